"""``me.sessions``: my signed-in clients (app/accounts/sessions.py)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.accounts import sessions


@strawberry.type(description="One signed-in client (a bearer token) of mine.")
class Session:
    id: strawberry.ID = strawberry.field(description="For `revokeSession`.")
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(description="To the minute.")
    expires_at: datetime
    client: str | None = strawberry.field(description="The User-Agent that signed in.")
    current: bool = strawberry.field(description="The token of this request.")


async def my_sessions(info: strawberry.Info) -> list[Session]:
    ctx = info.context
    viewer = ctx.require_viewer()
    return [
        Session(
            id=strawberry.ID(str(row.id)), created_at=row.created_at,
            last_used_at=row.last_used_at,
            expires_at=row.created_at + ctx.settings.session_lifetime, client=row.client,
            current=row.token_sha256 == viewer.token_sha256,
        )
        for row in await sessions.active(ctx.settings, viewer.id)
    ]  # fmt: skip
