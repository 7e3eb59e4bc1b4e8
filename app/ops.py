"""Operations: health and readiness, Prometheus metrics, one log line per request.

``RequestLog`` is a pure ASGI middleware (it never buffers bodies, so it costs
little and works for WebSockets too): it gives every request an id (the client's
``X-Request-ID`` when it sends a sane one), returns it in the ``X-Request-ID``
response header, and when the request ends logs one line with the method, path,
status, GraphQL operation name, user and duration, and feeds the request metrics.
The GraphQL layer fills in ``scope["state"]["operation"]``, and the API guard the
signed-in ``["viewer"]``.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import EVENTS_BEHIND, REQUEST_SECONDS, REQUESTS

log = logging.getLogger("sunrank.request")

# Events are applied right after they commit, so a few may be in flight under load.
READY_LAG = 50
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex[:16]


class RequestLog:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        request_id = state["request_id"] = _request_id(scope)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            path = scope.get("path", "")
            operation = state.get("operation") or _route_name(path)
            if path != "/metrics":
                REQUESTS.labels(operation, str(status)).inc()
                REQUEST_SECONDS.labels(operation).observe(elapsed)
            log.info(
                "request",
                extra={"fields": {
                    "request_id": request_id, "method": scope.get("method", "WS"),
                    "path": path, "status": status, "operation": operation,
                    "operation_name": state.get("operation_name"),
                    "user": getattr(state.get("viewer"), "username", None),
                    "duration_ms": round(elapsed * 1000, 2),
                }},
            )  # fmt: skip


def _route_name(path: str) -> str:
    # A bounded set of label values: unknown paths must not grow the metrics.
    return path if path in ("/healthz", "/readyz", "/metrics", "/graphql") else "other"


class StructuredFormatter(logging.Formatter):
    """``fields`` passed in ``extra`` become ``key=value`` pairs, or JSON keys."""

    def __init__(self, as_json: bool):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        if self.as_json:
            out = {
                "ts": self.formatTime(record), "level": record.levelname.lower(),
                "logger": record.name, "msg": record.getMessage(), **fields,
            }  # fmt: skip
            if record.exc_info:
                out["exception"] = self.formatException(record.exc_info)
            return json.dumps(out, default=str)
        line = super().format(record)
        if fields:
            line += " " + " ".join(f"{k}={_logfmt(v)}" for k, v in fields.items())
        return line


def _logfmt(value: Any) -> str:
    text = "-" if value is None else str(value)
    return json.dumps(text) if (" " in text or '"' in text or not text) else text


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(StructuredFormatter(as_json=fmt == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn's own access log would duplicate RequestLog's line
    logging.getLogger("uvicorn.access").disabled = True


async def healthz(request: Request) -> JSONResponse:
    """The process is alive (no dependency is checked)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: database reachable, learner loaded and caught up with the log."""
    from tortoise import connections

    from app.learner import dbio

    checks: dict[str, Any] = {}
    ok = True
    try:
        conn = connections.get(next(iter(connections.db_config)))
        await conn.execute_query("SELECT 1")
        last = await dbio.last_event_id()
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready", with the reason
        checks["database"] = f"unreachable: {type(exc).__name__}"
        ok, last = False, None
    learner = getattr(request.app.state, "learner", None)
    if learner is None or not learner.ready:
        checks["learner"] = "loading"
        ok = False
    else:
        checks["learner"] = "ok"
        if last is not None:
            behind = max(0, last - learner.watermark)
            EVENTS_BEHIND.set(behind)
            checks["events_behind"] = behind
            ok = ok and behind <= READY_LAG
    return JSONResponse(
        {"status": "ready" if ok else "not ready", **checks}, status_code=200 if ok else 503
    )


async def metrics(request: Request) -> Response:
    learner = getattr(request.app.state, "learner", None)
    if learner is not None and learner.ready:
        from app.learner import dbio

        try:
            EVENTS_BEHIND.set(max(0, await dbio.last_event_id() - learner.watermark))
        except Exception:  # the database being down must not hide the other metrics
            log.warning("metrics: could not read the event log", exc_info=True)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
