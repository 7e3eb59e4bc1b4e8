"""Admins deactivate and reactivate accounts. A deactivated account cannot sign in
(its sessions are revoked), and its influence leaves the scores at once through
the events the learner already knows: a comparison_deleted per comparison, a
vouch_changed per vouch (given and received), its pretrust back to 0. Its data
stays until the account is deleted; the learner's full fits leave it out
(app/engine/dbio.py reads :func:`deactivated_ids`). Reactivating replays the same
data as comparison_created / vouch_changed / pretrust_changed events.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from tortoise.transactions import in_transaction

from app.db.models import (
    AccountDeactivation,
    ApiToken,
    Comparison,
    ComparisonScore,
    Event,
    EventKind,
    User,
    Vouch,
)
from app.db.validation import InvalidInput
from app.db.writes import comparison_payload, lock_event_log

MAX_REASON = 500


async def deactivated_ids(conn: object | None = None) -> set[int]:
    query = AccountDeactivation.all()
    if conn is not None:
        query = query.using_db(conn)  # type: ignore[arg-type]
    # tortoise types values_list(flat=True) as tuples; it is the list of ids.
    return set(cast(list[int], await query.values_list("user_id", flat=True)))


async def is_deactivated(user_id: int) -> bool:
    return await AccountDeactivation.exists(user_id=user_id)


async def set_active(user: User, active: bool, admin_id: int, reason: str | None) -> Event | None:
    """Deactivate or reactivate; returns the last event written (None if nothing
    changed)."""
    if reason is not None and len(reason) > MAX_REASON:
        raise InvalidInput("reason", f"at most {MAX_REASON} characters", "TOO_LONG")
    async with in_transaction() as conn:
        await lock_event_log(conn)
        current = await AccountDeactivation.get_or_none(user_id=user.id, using_db=conn)
        if (current is None) == active:
            return None  # already so
        comparisons = await Comparison.filter(user_id=user.id).using_db(conn)
        vouches = await Vouch.filter(voucher_id=user.id, imported=False).using_db(conn)
        vouches += await Vouch.filter(vouchee_id=user.id, imported=False).using_db(conn)
        events: list[Event] = []
        if active:
            await AccountDeactivation.filter(user_id=user.id).using_db(conn).delete()
            scores: dict[int, dict[str, tuple[int, int]]] = {}
            rows = await ComparisonScore.filter(comparison__user_id=user.id).using_db(conn)
            for s in rows:
                scores.setdefault(s.comparison_id, {})[s.criterion] = (s.score, s.score_max)  # type: ignore[attr-defined]
            events += [
                Event(kind=EventKind.COMPARISON_CREATED,
                      payload=comparison_payload(user.id, c.video_a_id, c.video_b_id, scores[c.id]))  # type: ignore[attr-defined]
                for c in comparisons if c.id in scores
            ]  # fmt: skip
            pretrust = user.pretrust
        else:
            await AccountDeactivation.create(
                user_id=user.id, deactivated_at=datetime.now(UTC), by_id=admin_id,
                reason=reason, using_db=conn,
            )  # fmt: skip
            await ApiToken.filter(user_id=user.id).using_db(conn).update(revoked=True)
            events += [
                Event(kind=EventKind.COMPARISON_DELETED,
                      payload={"user": user.id, "video_a": c.video_a_id, "video_b": c.video_b_id})  # type: ignore[attr-defined]
                for c in comparisons
            ]  # fmt: skip
            pretrust = 0.0
        events += [
            Event(kind=EventKind.VOUCH_CHANGED,
                  payload={"voucher": v.voucher_id, "vouchee": v.vouchee_id, "active": active})  # type: ignore[attr-defined]
            for v in vouches
        ]  # fmt: skip
        if user.pretrust:
            events.append(
                Event(
                    kind=EventKind.PRETRUST_CHANGED, payload={"user": user.id, "pretrust": pretrust}
                )
            )
        if not events:
            return None
        await Event.bulk_create(events, using_db=conn)
        return await Event.all().using_db(conn).order_by("-id").first()
