"""Every change the learner depends on, each written with its ``Event`` in one
transaction (DESIGN.md §3): a crash leaves either both or neither.

Callers pass database ids; checks of user input happen before (app/db/validation.py)
and the database constraints catch anything that slips through. Functions return
the ``Event`` they wrote (or ``None`` when nothing changed), which the caller hands
to the learner *after* the transaction has committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app.db.models import (
    Comparison,
    ComparisonScore,
    Event,
    EventKind,
    RatingVisibility,
    User,
    Vouch,
)

Scores = Mapping[str, tuple[int, int]]  # criterion -> (score, score_max)
EVENT_LOG_LOCK = 0x53554E52  # "SUNR": the PostgreSQL advisory lock of the event log


async def lock_event_log(conn: BaseDBAsyncClient) -> None:
    """Serialize writers of the event log until the transaction ends.

    Event ids then commit in increasing order, so whoever sees event N committed
    also sees every event before it: the learner can follow the log with a simple
    watermark. SQLite has a single writer already; PostgreSQL needs the lock
    (sequence values are handed out before commit, in any order).
    """
    if conn.capabilities.dialect == "postgres":
        await conn.execute_query(f"SELECT pg_advisory_xact_lock({EVENT_LOG_LOCK})")


def canonical(
    video_a: int, video_b: int, scores: Scores
) -> tuple[int, int, dict[str, tuple[int, int]]]:
    """Orient a pair as stored (``video_a < video_b``), negating scores if flipped."""
    if video_a < video_b:
        return video_a, video_b, dict(scores)
    return video_b, video_a, {c: (-s, m) for c, (s, m) in scores.items()}


def comparison_payload(user: int, video_a: int, video_b: int, scores: Scores) -> dict:
    return {
        "user": user,
        "video_a": video_a,
        "video_b": video_b,
        "scores": {c: [s, m] for c, (s, m) in sorted(scores.items())},
    }


async def upsert_comparison(
    user_id: int, video_a: int, video_b: int, scores: Scores, *, now: datetime | None = None
) -> tuple[Comparison, Event | None]:
    """Create the user's comparison of a pair, or replace its scores.

    ``scores`` is oriented as given (negative prefers ``video_a``). Criteria absent
    from ``scores`` are removed from an existing comparison. Returns the stored
    comparison and the event, or ``None`` if the scores were already exactly these.
    """
    if not scores:
        raise ValueError("a comparison needs at least one criterion score")
    lo, hi, oriented = canonical(video_a, video_b, scores)
    now = now or datetime.now(UTC)
    async with in_transaction() as conn:
        await lock_event_log(conn)
        comparison = await Comparison.get_or_none(
            user_id=user_id, video_a_id=lo, video_b_id=hi, using_db=conn
        )
        if comparison is None:
            kind = EventKind.COMPARISON_CREATED
            comparison = await Comparison.create(
                user_id=user_id,
                video_a_id=lo,
                video_b_id=hi,
                created_at=now,
                updated_at=now,
                using_db=conn,
            )
        else:
            existing = {
                s.criterion: (s.score, s.score_max)
                for s in await ComparisonScore.filter(comparison_id=comparison.id).using_db(conn)
            }
            if existing == oriented:
                return comparison, None
            kind = EventKind.COMPARISON_UPDATED
            comparison.updated_at = now
            await comparison.save(using_db=conn, update_fields=["updated_at"])
            await ComparisonScore.filter(comparison_id=comparison.id).using_db(conn).delete()
        await ComparisonScore.bulk_create(
            [
                ComparisonScore(comparison_id=comparison.id, criterion=c, score=s, score_max=m)
                for c, (s, m) in oriented.items()
            ],
            using_db=conn,
        )
        event = await Event.create(
            kind=kind, payload=comparison_payload(user_id, lo, hi, oriented), using_db=conn
        )
    return comparison, event


async def delete_comparison(user_id: int, video_a: int, video_b: int) -> Event | None:
    lo, hi = sorted((video_a, video_b))
    async with in_transaction() as conn:
        await lock_event_log(conn)
        deleted = (
            await Comparison.filter(user_id=user_id, video_a_id=lo, video_b_id=hi)
            .using_db(conn)
            .delete()
        )
        if not deleted:
            return None
        return await Event.create(
            kind=EventKind.COMPARISON_DELETED,
            payload={"user": user_id, "video_a": lo, "video_b": hi},
            using_db=conn,
        )


async def set_pretrust(user_id: int, pretrust: float) -> Event | None:
    async with in_transaction() as conn:
        await lock_event_log(conn)
        updated = (
            await User.filter(id=user_id)
            .exclude(pretrust=pretrust)
            .using_db(conn)
            .update(pretrust=pretrust)
        )
        if not updated:
            return None
        return await Event.create(
            kind=EventKind.PRETRUST_CHANGED,
            payload={"user": user_id, "pretrust": pretrust},
            using_db=conn,
        )


async def set_vouch(voucher_id: int, vouchee_id: int, active: bool) -> Event | None:
    async with in_transaction() as conn:
        await lock_event_log(conn)
        if active:
            _, created = await Vouch.get_or_create(
                voucher_id=voucher_id, vouchee_id=vouchee_id, using_db=conn
            )
            changed = created
        else:
            changed = bool(
                await Vouch.filter(voucher_id=voucher_id, vouchee_id=vouchee_id)
                .using_db(conn)
                .delete()
            )
        if not changed:
            return None
        return await Event.create(
            kind=EventKind.VOUCH_CHANGED,
            payload={"voucher": voucher_id, "vouchee": vouchee_id, "active": active},
            using_db=conn,
        )


async def set_visibility(user_id: int, video_id: int, is_public: bool) -> Event | None:
    async with in_transaction() as conn:
        await lock_event_log(conn)
        row = await RatingVisibility.get_or_none(user_id=user_id, video_id=video_id, using_db=conn)
        current = True if row is None else row.is_public
        if current == is_public:
            return None
        if row is None:
            await RatingVisibility.create(
                user_id=user_id, video_id=video_id, is_public=is_public, using_db=conn
            )
        else:
            row.is_public = is_public
            await row.save(using_db=conn, update_fields=["is_public"])
        return await Event.create(
            kind=EventKind.VISIBILITY_CHANGED,
            payload={"user": user_id, "video": video_id, "is_public": is_public},
            using_db=conn,
        )
