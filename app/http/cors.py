"""Cross-origin access for browser apps: the origins in ``SUNRANK_CORS_ORIGINS``
(none by default) may call the API from another site, over HTTP and WebSocket.

HTTP is Starlette's CORSMiddleware: preflights (``OPTIONS`` with
``Access-Control-Request-Method``) are answered here, and every response to an allowed
origin, refusals from the edge included (429, 413, 401), carries
``Access-Control-Allow-Origin`` so the app can read them. Credentials are allowed
(cookies are not used, but an app sending ``credentials: "include"`` must not fail),
with the headers a GraphQL client sends: ``Authorization`` (bearer tokens),
``Content-Type`` (``application/json`` is not a "simple" type, so every POST is
preflighted), ``Accept`` (``application/graphql-response+json``) and ``X-Request-Id``.

Browsers do not apply CORS to WebSockets: they send an ``Origin`` header and leave the
check to the server. A handshake whose ``Origin`` is neither allowed nor the server's own
(``Host``) gets 403, so a page on another site cannot use a visitor's network position
or a future cookie. No ``Origin`` means a non-browser client, which CORS does not
concern: allowed.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from strawberry.http.websocket_origin import is_same_origin, normalize_origin

from app.config import Settings
from app.http.asgi import ASGIApp, Receive, Scope, Send, deny_websocket

ALLOW_HEADERS = ("Authorization", "Content-Type", "Accept", "X-Request-Id")
EXPOSE_HEADERS = ("X-Request-Id", "Retry-After")  # read by apps: support ids, back-off
ALLOW_METHODS = ("GET", "POST", "OPTIONS")


class Cors:
    """CORS for HTTP and the ``Origin`` check for WebSocket handshakes, one list."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.origins = frozenset(settings.cors_origins)
        self.any_origin = "*" in self.origins
        self.http = CORSMiddleware(
            app,
            allow_origins=tuple(self.origins),
            allow_methods=ALLOW_METHODS,
            allow_headers=ALLOW_HEADERS,
            allow_credentials=bool(self.origins),
            expose_headers=EXPOSE_HEADERS,
            max_age=settings.cors_max_age_seconds,
        )

    def websocket_allowed(self, headers: Headers) -> bool:
        """strawberry's rule (the view checks it again with ``allowed_origins`` set to
        the same list, app.main): no Origin, the same host and port as ``Host`` (the
        scheme is not compared, a TLS-terminating proxy changes it), or a listed one."""
        origin = headers.get("origin")
        if origin is None or self.any_origin or headers.get("sec-fetch-site") == "same-origin":
            return True
        return is_same_origin(origin, headers.get("host")) or (
            normalize_origin(origin) in self.origins
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
            return
        if scope["type"] == "websocket":
            headers = Headers(scope=scope)
            if not self.websocket_allowed(headers):
                origin = headers.get("origin", "")[:200]
                await deny_websocket(
                    scope, receive, send, 403,
                    f"WebSocket connections from the origin {origin!r} are not allowed "
                    "(SUNRANK_CORS_ORIGINS lists the allowed ones)", "FORBIDDEN_ORIGIN",
                )  # fmt: skip
                return
        await self.app(scope, receive, send)
