"""One log line and one metrics sample per HTTP request or WebSocket session.

A pure ASGI middleware (it never buffers bodies): it gives every request an id
(the client's ``X-Request-ID`` when it sends a sane one), returns it in the
``X-Request-ID`` response header, and when the request ends logs the method, path,
status, GraphQL operation, user and duration. The GraphQL layer fills in
``scope["state"]["operation"]``, and app.http.auth the signed-in ``["viewer"]``.

WebSocket sessions are logged with their real outcome: ``101`` once accepted
(with the close code, whoever closed), the HTTP status of a refused handshake
(401, 429…), or ``403`` for a handshake closed before it was accepted.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from app.http.asgi import ASGIApp, Message, Receive, Scope, Send, client_ip, state
from app.metrics import REQUEST_SECONDS, REQUESTS

log = logging.getLogger("sunrank.request")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
_ROUTES = ("/healthz", "/readyz", "/metrics", "/graphql")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(candidate):
                return candidate
    return os.urandom(8).hex()  # 16 hex digits, as uuid4().hex[:16] gave, 5x faster


# (operation, status) -> the metrics' children for these labels: ``labels()`` hashes
# and locks on every call (~7 µs a request); operations and statuses are bounded sets.
_SAMPLES: dict[tuple[str, int], tuple[Any, Any]] = {}


def _samples(operation: str, status: int) -> tuple[Any, Any]:
    found = _SAMPLES.get((operation, status))
    if found is None:
        found = REQUESTS.labels(operation, str(status)), REQUEST_SECONDS.labels(operation)
        _SAMPLES[(operation, status)] = found
    return found


def _route_name(path: str) -> str:
    # A bounded set of label values: unknown paths must not grow the metrics.
    return path if path in _ROUTES else "other"


class _Outcome:
    """What a request ended with, read off the messages going by."""

    def __init__(self, scope: Scope, request_id: str):
        self.websocket = scope["type"] == "websocket"
        self.request_id = request_id.encode()
        self.status = 500  # an app that raised before answering
        self.close_code: int | None = None

    def sent(self, message: Message) -> Message:
        kind = message["type"]
        if kind in ("http.response.start", "websocket.http.response.start"):
            self.status = message["status"]
            headers = [*message.get("headers", []), (b"x-request-id", self.request_id)]
            return {**message, "headers": headers}
        if kind == "websocket.accept":
            self.status = 101
            return {**message, "headers": [*message.get("headers", []),
                                           (b"x-request-id", self.request_id)]}  # fmt: skip
        if kind == "websocket.close":
            if self.status == 500:
                self.status = 403  # closed before accepting: uvicorn answers 403
            self.close_code = self.close_code or message.get("code", 1000)
        return message

    def received(self, message: Message) -> None:
        if message["type"] == "websocket.disconnect" and self.close_code is None:
            self.close_code = message.get("code", 1005)


class RequestLog:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_state = state(scope)
        request_id = request_state["request_id"] = _request_id(scope)
        outcome = _Outcome(scope, request_id)
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            await send(outcome.sent(message))

        async def receive_seen() -> Message:
            message = await receive()
            outcome.received(message)
            return message

        try:
            await self.app(scope, receive_seen if outcome.websocket else receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            path = scope.get("path", "")
            operation = request_state.get("operation") or _route_name(path)
            if outcome.websocket:
                operation = "websocket"  # a session carries many operations
            if path != "/metrics":
                counter, histogram = _samples(operation, outcome.status)
                counter.inc()
                histogram.observe(elapsed)
            fields = {
                "request_id": request_id, "method": scope.get("method", "WS"),
                "path": path, "status": outcome.status, "operation": operation,
                "operation_name": request_state.get("operation_name"),
                "user": getattr(request_state.get("viewer"), "username", None),
                "client": client_ip(scope), "duration_ms": round(elapsed * 1000, 2),
            }  # fmt: skip
            if outcome.websocket:
                fields["close_code"] = outcome.close_code
            log.info("request", extra={"fields": fields})
