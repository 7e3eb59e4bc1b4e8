"""Deleting an account: its comparisons, ratings, vouches (given and received),
tokens, address and everything else of it go, in one transaction that also writes
the events the learner needs to drop its influence (a comparison_deleted per
comparison, a vouch_changed per vouch, its pretrust back to 0). The public dataset
is built from the tables, so its next build no longer carries the account. The
username stays reserved for ``SUNRANK_USERNAME_REUSE_DAYS`` (someone else taking it
at once could pass for the former contributor).
"""

from __future__ import annotations

from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from app import auth
from app.db import usernames
from app.db.models import Comparison, Event, EventKind, ReleasedUsername, User, Vouch
from app.db.validation import InvalidInput
from app.db.writes import lock_event_log


async def delete_account(viewer: auth.Viewer, password: str) -> Event | None:
    """Delete the viewer's account (password required); returns the last event
    written, for the caller to hand to the learner."""
    user = await User.get(id=viewer.id)
    if not await auth.verify_password(user.password_hash, password):
        raise InvalidInput("password", "wrong password", "BAD_CREDENTIALS")
    async with in_transaction() as conn:
        await lock_event_log(conn)
        events: list[Event] = []
        comparisons = await Comparison.filter(user_id=user.id).using_db(conn)
        events += [
            Event(kind=EventKind.COMPARISON_DELETED,
                  payload={"user": user.id, "video_a": c.video_a_id, "video_b": c.video_b_id})  # type: ignore[attr-defined]
            for c in comparisons
        ]  # fmt: skip
        vouches = await Vouch.filter(voucher_id=user.id).using_db(conn)
        vouches += await Vouch.filter(vouchee_id=user.id).using_db(conn)
        events += [
            Event(kind=EventKind.VOUCH_CHANGED,
                  payload={"voucher": v.voucher_id, "vouchee": v.vouchee_id, "active": False})  # type: ignore[attr-defined]
            for v in vouches
        ]  # fmt: skip
        if user.pretrust:
            events.append(
                Event(kind=EventKind.PRETRUST_CHANGED, payload={"user": user.id, "pretrust": 0.0})
            )
        if events:
            await Event.bulk_create(events, using_db=conn)
        await Comparison.filter(user_id=user.id).using_db(conn).delete()
        await Vouch.filter(voucher_id=user.id).using_db(conn).delete()
        await Vouch.filter(vouchee_id=user.id).using_db(conn).delete()
        await ReleasedUsername.filter(username_key=user.username_key).using_db(conn).delete()
        await ReleasedUsername.create(
            username_key=user.username_key, released_at=datetime.now(UTC), using_db=conn
        )
        await User.filter(id=user.id).using_db(conn).delete()  # the rest cascades
        last = await Event.filter(id__gt=0).using_db(conn).order_by("-id").first()
    return last if events else None


async def check_reusable(username: str, reuse_days: float) -> None:
    """Refuse a name an account released less than ``reuse_days`` ago."""
    key = usernames.key(usernames.normalize(username))
    row = await ReleasedUsername.get_or_none(username_key=key)
    if row is None:
        return
    age = datetime.now(UTC) - row.released_at
    if age.total_seconds() < reuse_days * 86_400:
        raise InvalidInput(
            "username",
            "this username belonged to a deleted account; it can be taken again "
            f"{reuse_days:g} days after the deletion (SUNRANK_USERNAME_REUSE_DAYS)",
            "USERNAME_TAKEN",
        )
