"""Rate limits, on HTTP requests and WebSocket operations alike, on the ``limits``
library (sliding-window counters).

Two rules, each its own middleware instance:

- ``"ip"``: every request from one client address, signed in or not, at most
  ``SUNRANK_RATE_LIMIT_PER_IP_PER_MINUTE``. It runs before authentication, so
  floods and token guessing are cut before they reach the database.
- ``"client"``: per signed-in user, or per address when anonymous, at most
  ``SUNRANK_RATE_LIMIT_PER_MINUTE``.

What counts: each HTTP request to ``/graphql``; on a WebSocket, the handshake and
each ``subscribe`` message (one GraphQL operation: query, mutation or
subscription). Over the limit, HTTP gets ``429 RATE_LIMITED`` with
``Retry-After``; a WebSocket operation gets a graphql-transport-ws ``error``
message with the same code and ``retryAfter``, and the connection stays open.

The counters live in Redis when ``SUNRANK_CACHE_URL`` is a Redis URL, so every
server process shares them; in process memory otherwise, where each counter
expires with its window (no clear-everything eviction that rotating addresses
could trigger). If Redis fails, requests are let through and the failure is
logged, like the cache does: an outage of the limiter must not become one of the
API.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Literal

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from app.config import Settings
from app.http.asgi import (
    GRAPHQL_PATH,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    client_ip,
    deny_websocket,
    send_json_error,
    state,
    ws_frame,
    ws_operation_error,
)

log = logging.getLogger("sunrank.ratelimit")
Rule = Literal["ip", "client"]
LOG_EVERY_SECONDS = 60.0


def counter_storage(settings: Settings, purpose: str) -> Storage:
    """Where ``limits`` keeps its counters: Redis when ``SUNRANK_CACHE_URL`` is Redis
    (keys under ``<namespace>:<purpose>``, shared by every server process), else this
    process's memory."""
    if not settings.cache_url.startswith("redis"):
        return MemoryStorage()
    return RedisStorage(
        "async+" + settings.cache_url,
        implementation="redispy",
        key_prefix=f"{settings.cache_namespace.rstrip(':')}:{purpose}",
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
    )


async def close_storage(storage: Storage) -> None:
    # limits has no close(): release the redis-py client it holds, if any.
    client = getattr(getattr(storage, "bridge", None), "storage", None)
    if client is not None and hasattr(client, "aclose"):
        await client.aclose()


class RateLimiter:
    """The shared counters and the two limits; one per app."""

    def __init__(self, settings: Settings):
        self.per_client = RateLimitItemPerMinute(settings.rate_limit_per_minute)
        self.per_ip = RateLimitItemPerMinute(settings.rate_limit_per_ip_per_minute)
        self.storage = counter_storage(settings, "ratelimit")
        self.strategy = SlidingWindowCounterRateLimiter(self.storage)
        self._logged_at = -math.inf

    async def retry_after(self, item: RateLimitItem, key: str) -> float:
        """Count one hit for ``key``: 0 if allowed, else the seconds to wait."""
        try:
            if await self.strategy.hit(item, key):
                return 0.0
            stats = await self.strategy.get_window_stats(item, key)
        except Exception as exc:  # fail open: see the module doc
            if time.monotonic() - self._logged_at > LOG_EVERY_SECONDS:
                self._logged_at = time.monotonic()
                log.warning(
                    "rate limiter unavailable (%s: %s): not limiting", type(exc).__name__, exc
                )
            return 0.0
        return max(1.0, stats.reset_time - time.time())

    async def close(self) -> None:
        await close_storage(self.storage)


class RateLimit:
    def __init__(self, app: ASGIApp, limiter: RateLimiter, rule: Rule, path: str = GRAPHQL_PATH):
        self.app, self.limiter, self.rule, self.path = app, limiter, rule, path
        self.item = limiter.per_ip if rule == "ip" else limiter.per_client

    def _key(self, scope: Scope) -> str:
        viewer = state(scope).get("viewer") if self.rule == "client" else None
        return f"user:{viewer.id}" if viewer is not None else f"ip:{self.rule}:{client_ip(scope)}"

    def _message(self, seconds: int) -> str:
        limit = self.item.amount
        who = "per address" if self.rule == "ip" else "per user (per address when anonymous)"
        return f"rate limit of {limit} requests per minute {who} exceeded: retry in {seconds} s"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        if wait := await self.limiter.retry_after(self.item, self._key(scope)):
            seconds = math.ceil(wait)
            if scope["type"] == "websocket":
                await deny_websocket(
                    scope, receive, send, 429, self._message(seconds), "RATE_LIMITED"
                )
            else:
                await send_json_error(
                    scope, send, 429, self._message(seconds), "RATE_LIMITED",
                    [(b"retry-after", str(seconds).encode())],
                )  # fmt: skip
            return
        if scope["type"] == "websocket":
            receive = self._limited_operations(scope, receive, send)
        await self.app(scope, receive, send)

    def _limited_operations(self, scope: Scope, receive: Receive, send: Send) -> Receive:
        """Each ``subscribe`` message is one request; over the limit it is answered
        with an ``error`` message instead of reaching strawberry."""

        async def limited() -> Message:
            while True:
                message = await receive()
                frame = ws_frame(message) if message["type"] == "websocket.receive" else None
                if frame is None or frame.get("type") != "subscribe":
                    return message
                wait = await self.limiter.retry_after(self.item, self._key(scope))
                if not wait:
                    return message
                seconds = math.ceil(wait)
                await send(ws_operation_error(
                    frame.get("id"), self._message(seconds), "RATE_LIMITED", retryAfter=seconds
                ))  # fmt: skip

        return limited
