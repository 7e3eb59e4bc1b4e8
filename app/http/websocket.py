"""WebSocket-only limits on ``/graphql`` (graphql-transport-ws), the ones HTTP
gets for free from its request/response shape:

- connections per client address, at most ``SUNRANK_WS_MAX_CONNECTIONS_PER_IP``
  open at once in this process (the handshake gets ``429``);
- operations in flight per connection (subscriptions, and queries or mutations
  still running), at most ``SUNRANK_WS_MAX_OPERATIONS``; one more gets an
  ``error`` message with code ``TOO_MANY_OPERATIONS``;
- idle connections: no operation in flight and nothing received for
  ``SUNRANK_WS_IDLE_SECONDS`` closes with 4408;
- slow clients: a message the client does not take within
  ``SUNRANK_WS_SEND_TIMEOUT_SECONDS`` closes the connection with 1008 (its
  messages would otherwise pile up in the server), and later messages to it are
  dropped.

The message size, rate limit and authentication apply to WebSockets in their own
middlewares (app.http.body, app.http.ratelimit, app.http.auth), as to HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Any

from app.config import Settings
from app.http.asgi import (
    GRAPHQL_PATH,
    WS_BAD_MESSAGE,
    WS_IDLE,
    WS_POLICY_VIOLATION,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    client_ip,
    deny_websocket,
    ws_frame,
    ws_operation_error,
)

log = logging.getLogger("sunrank.websocket")


def close_reason(reason: str) -> str:
    """A close reason the protocol accepts: valid UTF-8 of at most 123 bytes
    (strawberry quotes client input in its reasons, which can be neither)."""
    data = reason.encode("utf-8", "replace")[:123]
    return data.decode("utf-8", "ignore")


class WebSocketGuard:
    def __init__(self, app: ASGIApp, settings: Settings, path: str = GRAPHQL_PATH):
        self.app, self.path = app, path
        self.max_connections = settings.ws_max_connections_per_ip
        self.max_operations = settings.ws_max_operations
        self.idle_seconds = settings.ws_idle_seconds
        self.send_timeout = settings.ws_send_timeout_seconds
        self.open: Counter[str] = Counter()  # connections per address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        ip = client_ip(scope)
        if self.open[ip] >= self.max_connections:
            await deny_websocket(
                scope, receive, send, 429,
                f"too many WebSocket connections from this address: the limit is "
                f"{self.max_connections}", "TOO_MANY_CONNECTIONS",
            )  # fmt: skip
            return
        self.open[ip] += 1
        connection = _Connection(self, send)
        watchdog = asyncio.create_task(connection.watch_idle())
        try:
            await self.app(scope, connection.wrap_receive(receive), connection.send)
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            self.open[ip] -= 1
            if not self.open[ip]:
                del self.open[ip]


class _Connection:
    """One connection's operations in flight, last activity and state."""

    def __init__(self, guard: WebSocketGuard, send: Send):
        self.guard = guard
        self._send = send
        self.operations: set[Any] = set()
        self.last_activity = time.monotonic()
        self.closed = False  # by the app or by this guard: nothing more is sent
        self.close_code = 1000
        self.gone = asyncio.Event()  # closed by this guard: the app must let go

    def wrap_receive(self, receive: Receive) -> Receive:
        async def guarded() -> Message:
            while True:
                message = await self._receive_unless_gone(receive)
                self.last_activity = time.monotonic()
                frame = ws_frame(message) if message["type"] == "websocket.receive" else None
                if frame is None:
                    return message
                kind, op = frame.get("type"), frame.get("id")
                if kind in ("subscribe", "complete") and not isinstance(op, str):
                    # graphql-transport-ws ids are strings; others would crash strawberry
                    await self._close(WS_BAD_MESSAGE, "an operation id must be a string")
                    return {"type": "websocket.disconnect", "code": WS_BAD_MESSAGE}
                if kind == "complete":
                    self.operations.discard(op)
                if kind != "subscribe" or op in self.operations:
                    return message  # a duplicate id: strawberry closes with 4409
                if len(self.operations) < self.guard.max_operations:
                    self.operations.add(op)
                    return message
                await self.send(ws_operation_error(
                    op, f"too many operations in flight on this connection: the limit is "
                    f"{self.guard.max_operations}", "TOO_MANY_OPERATIONS",
                ))  # fmt: skip

        return guarded

    async def _receive_unless_gone(self, receive: Receive) -> Message:
        """The client's next message, or a disconnect as soon as this guard closed the
        connection: a client too slow to take a close frame would otherwise keep the
        app (strawberry's operations) waiting on it for good."""
        if self.gone.is_set():
            return {"type": "websocket.disconnect", "code": self.close_code}
        message = asyncio.ensure_future(receive())
        gone = asyncio.ensure_future(self.gone.wait())
        await asyncio.wait((message, gone), return_when=asyncio.FIRST_COMPLETED)
        gone.cancel()
        if message.done():
            return message.result()
        message.cancel()
        return {"type": "websocket.disconnect", "code": self.close_code}

    async def send(self, message: Message) -> None:
        if self.closed:
            return  # the connection was closed for being slow or idle
        if message["type"] == "websocket.send":
            frame = ws_frame({"text": message.get("text")})
            if frame is not None and frame.get("type") in ("complete", "error"):
                self.operations.discard(frame.get("id"))
        elif message["type"] == "websocket.close":
            self.closed = True
            message = {**message, "reason": close_reason(message.get("reason") or "")}
        try:
            await asyncio.wait_for(self._send(message), self.guard.send_timeout)
        except TimeoutError:
            log.warning("closing a WebSocket whose client reads too slowly")
            await self._close(WS_POLICY_VIOLATION, "client too slow")
        self.last_activity = time.monotonic()

    async def _close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        with contextlib.suppress(Exception):  # already closing, gone, or not reading
            await asyncio.wait_for(
                self._send({"type": "websocket.close", "code": code, "reason": reason}),
                self.guard.send_timeout,
            )
        self.gone.set()

    async def watch_idle(self) -> None:
        idle = self.guard.idle_seconds
        while not self.closed:
            await asyncio.sleep(min(idle, 5.0))
            if not self.operations and time.monotonic() - self.last_activity >= idle:
                await self._close(WS_IDLE, f"idle for {idle:g} s")
