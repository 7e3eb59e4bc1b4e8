"""Sessions: the bearer tokens of an account, listed (created, last used, client,
expiry) and revoked one by one."""

from __future__ import annotations

from datetime import UTC, datetime

from app import auth
from app.config import Settings
from app.db.models import ApiToken
from app.db.validation import InvalidInput


async def active(settings: Settings, user_id: int) -> list[ApiToken]:
    """Unrevoked, unexpired tokens, newest first."""
    since = datetime.now(UTC) - settings.session_lifetime
    return (
        await ApiToken.filter(user_id=user_id, revoked=False, created_at__gt=since)
        .order_by("-created_at", "-id")
        .limit(500)
    )


async def revoke(viewer: auth.Viewer, session_id: object, cache: auth.TokenCache | None) -> bool:
    """Revoke one of the viewer's sessions by id; UNKNOWN_SESSION for any other id
    (someone else's looks the same as a missing one)."""
    pk = session_id if isinstance(session_id, int) else None
    if isinstance(session_id, str) and session_id.strip().isdigit() and len(session_id) < 19:
        pk = int(session_id)
    row = await ApiToken.get_or_none(id=pk, user_id=viewer.id, revoked=False) if pk else None
    if row is None:
        raise InvalidInput("id", "no such session of yours", "UNKNOWN_SESSION")
    await ApiToken.filter(id=row.id).update(revoked=True)
    if cache is not None:
        cache.evict(row.token_sha256)
    return True
