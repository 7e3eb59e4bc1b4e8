"""HTTP guard in front of ``/graphql``: body size, authentication, rate limit.

One pure-ASGI middleware, so every check happens before strawberry parses a byte:

1. **Body size**: a body over ``SUNRANK_MAX_BODY_BYTES`` (default 1 MiB) gets
   ``413`` with a JSON ``errors`` message, whether announced by Content-Length or
   streamed in chunks.
2. **Authentication**: ``Authorization: Bearer <token>`` is resolved to a
   :class:`app.auth.Viewer` (stored in ``scope["state"]["viewer"]`` for the
   GraphQL context); an unknown or revoked token gets ``401``.
3. **Rate limit**: a token bucket per signed-in user, or per client IP when
   anonymous, holding ``SUNRANK_RATE_LIMIT_PER_MINUTE`` requests (the burst) and
   refilled at that rate; an empty bucket gets ``429`` with ``Retry-After``
   (seconds). Buckets live in the process: with several workers the limit is per
   worker. The client IP is the socket peer (a reverse proxy must be configured
   to pass the real one to uvicorn with ``--proxy-headers``).

GraphQL-level limits (depth, tokens, aliases, page size, no batching) live in
``app/schema``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from app import auth
from app.config import Settings

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class RateLimiter:
    """Token buckets: ``per_minute`` burst, refilled at ``per_minute`` / 60 s."""

    def __init__(self, per_minute: int, max_keys: int = 100_000):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, updated)

    def hit(self, key: str, now: float | None = None) -> float:
        """Take one token; returns 0 if allowed, else the seconds to wait."""
        now = time.monotonic() if now is None else now
        tokens, updated = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - updated) * self.rate)
        if tokens >= 1.0:
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        full = self.capacity / self.rate  # seconds for an empty bucket to refill
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full}
        if len(self._buckets) >= self.max_keys:
            self._buckets.clear()


async def _json_error(
    send: Send, status: int, message: str, code: str, headers: list[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ApiGuard:
    """The middleware; ``paths`` are the routes it guards (default ``/graphql``)."""

    def __init__(
        self,
        app: Callable,
        settings: Settings,
        token_cache: auth.TokenCache | None = None,
        paths: tuple[str, ...] = ("/graphql",),
    ):
        self.app = app
        self.settings = settings
        self.max_body = settings.max_body_bytes
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.token_cache = token_cache
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        viewer = None
        client = (scope.get("client") or ("unknown", 0))[0]
        authorization = headers.get(b"authorization", b"").decode("latin-1").strip()
        token = None
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                token = ""
        if token is not None:
            try:
                viewer = await auth.authenticate(token.strip(), self.settings, self.token_cache)
            except auth.BadToken:
                viewer = None
                if scope["type"] == "http":
                    if wait := self.limiter.hit(f"ip:{client}"):
                        await self._too_many(send, wait)
                        return
                    await _json_error(
                        send, 401, "invalid or revoked bearer token: log in again",
                        "UNAUTHENTICATED", [(b"www-authenticate", b"Bearer")],
                    )  # fmt: skip
                    return
        scope.setdefault("state", {})["viewer"] = viewer
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        key = f"user:{viewer.id}" if viewer else f"ip:{client}"
        if wait := self.limiter.hit(key):
            await self._too_many(send, wait)
            return

        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await self._too_large(send)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        # Read the body (bounded), then replay it to the app.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        scope.setdefault("state", {})["body"] = body  # read once (app.response_cache)
        await self.app(scope, replay_body(body, receive), send)

    async def _too_large(self, send: Send) -> None:
        await _json_error(
            send, 413, f"request body too large: the limit is {self.max_body} bytes",
            "PAYLOAD_TOO_LARGE",
        )  # fmt: skip

    async def _too_many(self, send: Send, wait: float) -> None:
        seconds = max(1, math.ceil(wait))
        await _json_error(
            send, 429,
            f"rate limit of {self.settings.rate_limit_per_minute} requests per minute "
            f"exceeded: retry in {seconds} s", "RATE_LIMITED",
            [(b"retry-after", str(seconds).encode())],
        )  # fmt: skip


def replay_body(body: bytes, receive: Receive) -> Receive:
    """The buffered body once more for the app, then the client's own messages."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
