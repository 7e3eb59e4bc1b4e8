"""Who is calling: ``Authorization: Bearer <token>`` resolved to an
:class:`app.auth.Viewer`, stored in ``scope["state"]["viewer"]`` for the rate
limiter, the log line and the GraphQL context.

- HTTP: no header means anonymous. An unknown, expired, revoked or malformed token
  also answers as anonymous (public queries keep working for a client whose session
  ran out), with ``scope["state"]["auth_warning"]`` set: the GraphQL answer then
  carries it in ``extensions.warnings`` and a ``WWW-Authenticate: Bearer
  error="invalid_token"`` header (app/resolvers/context.py), and whatever needs
  sign-in fails with ``UNAUTHENTICATED`` as for any anonymous caller.
- WebSocket: the same header on the handshake (refused with 401 when bad: a
  subscription lives long, and silently running it as anonymous would hide the
  problem until the next reconnect), or the
  token in graphql-transport-ws's ``connection_init`` payload, which browsers must
  use since they cannot set headers on a WebSocket: see :func:`token_from_params`,
  called by :meth:`app.resolvers.context.SunrankGraphQL.on_ws_connect`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app import auth
from app.config import Settings
from app.http.asgi import (
    GRAPHQL_PATH,
    ASGIApp,
    Receive,
    Scope,
    Send,
    deny_websocket,
    state,
)

BAD_TOKEN = "invalid or revoked bearer token: log in again"
ANSWERED_ANONYMOUS = (
    "the bearer token is invalid, expired or revoked: answered as an anonymous caller "
    "(log in again)"
)


class MalformedAuthorization(auth.BadToken):
    """The Authorization value is not ``Bearer <token>``."""


def bearer_token(authorization: str) -> str:
    """The token of an ``Authorization`` value; MalformedAuthorization if it has none."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MalformedAuthorization()
    return token.strip()


def token_from_params(params: Mapping[str, Any] | None) -> str | None:
    """The token a ``connection_init`` payload carries, as ``{"Authorization":
    "Bearer …"}`` (the header's form, what Apollo and urql send) or
    ``{"authToken": "…"}``; None when it carries none. MalformedAuthorization when a
    value is there but unusable."""
    for key in ("Authorization", "authorization"):
        value = (params or {}).get(key)
        if value is not None:
            if not isinstance(value, str):
                raise MalformedAuthorization()
            return bearer_token(value)
    value = (params or {}).get("authToken")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise MalformedAuthorization()
    return value.strip()


class Authenticate:
    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        token_cache: auth.TokenCache | None = None,
        path: str = GRAPHQL_PATH,
    ):
        self.app, self.settings, self.token_cache, self.path = app, settings, token_cache, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        authorization = next(
            (v.decode("latin-1") for k, v in scope.get("headers") or () if k == b"authorization"),
            None,
        )
        viewer = None
        if authorization is not None:
            try:
                token = bearer_token(authorization)
                viewer = await auth.authenticate(token, self.settings, self.token_cache)
            except auth.BadToken:
                if scope["type"] == "websocket":
                    await self._refuse(scope, receive, send)
                    return
                state(scope)["auth_warning"] = {
                    "code": "UNAUTHENTICATED",
                    "message": ANSWERED_ANONYMOUS,
                }
        state(scope)["viewer"] = viewer
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await deny_websocket(scope, receive, send, 401, BAD_TOKEN, "UNAUTHENTICATED")
