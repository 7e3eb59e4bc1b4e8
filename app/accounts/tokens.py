"""Single-use mail tokens: 256 random bits in the link, only their SHA-256 stored.

Single use needs state, so they live in a table (``EmailToken``) rather than being
signed: spending one is a conditional UPDATE that only one request can win.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from app.auth import sha256
from app.db.models import EmailToken
from app.db.validation import InvalidInput

VERIFY = "verify"
RESET = "reset"
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 200


async def issue(user_id: int, purpose: str, ttl: timedelta, email: str | None = None) -> str:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    await EmailToken.create(
        user_id=user_id,
        purpose=purpose,
        token_sha256=sha256(token),
        email=email,
        expires_at=datetime.now(UTC) + ttl,
    )
    return token


async def spend(token: object, purpose: str, field: str = "token") -> EmailToken:
    """The token's row, now marked used; :class:`InvalidInput` when it is unknown
    (BAD_TOKEN), expired (EXPIRED_TOKEN) or spent already (USED_TOKEN)."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidInput(field, "not a valid link: ask for a new mail", "BAD_TOKEN")
    row = await EmailToken.get_or_none(token_sha256=sha256(token.strip()), purpose=purpose)
    if row is None:
        raise InvalidInput(field, "not a valid link: ask for a new mail", "BAD_TOKEN")
    now = datetime.now(UTC)
    if row.used_at is not None:
        raise InvalidInput(field, "this link was used already: ask for a new mail", "USED_TOKEN")
    if row.expires_at <= now:
        raise InvalidInput(field, "this link has expired: ask for a new mail", "EXPIRED_TOKEN")
    if not await EmailToken.filter(id=row.id, used_at=None).update(used_at=now):
        raise InvalidInput(field, "this link was used already: ask for a new mail", "USED_TOKEN")
    return row


async def void(user_id: int, purpose: str) -> None:
    """Spend every open token of a kind (a newer mail or a completed flow supersedes them)."""
    await EmailToken.filter(user_id=user_id, purpose=purpose, used_at=None).update(
        used_at=datetime.now(UTC)
    )
