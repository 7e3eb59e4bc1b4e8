"""Operations: health and readiness, Prometheus metrics, structured logging.

The per-request log line is app.http.log's.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.metrics import EVENTS_BEHIND

log = logging.getLogger("sunrank.request")

# Events are applied right after they commit, so a few may be in flight under load.
READY_LAG = 50


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
    """Ready to serve: database reachable, learner loaded and caught up with the log
    (``events_behind``; ``role``: leader or follower of refits; ``checkpoint``).

    ``full_fit`` says how far the live scores may be from a full fit of the log:
    how many events were applied online on top of the last refit, the age of the
    data that refit read, and whether the next one is running (information only:
    it does not make the server unready).
    """
    from tortoise import connections

    from app.engine import dbio

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
        checks["full_fit"] = learner.freshness()
        # Several processes on PostgreSQL: this one's role, the published fitted state
        # it runs on (id and event watermark), and whether change notifications arrive
        # (without them it still follows the log, once a second).
        cluster = getattr(request.app.state, "cluster", None)
        if cluster is not None:
            checks.update(learner.cluster_state())
            checks["notifications"] = "listening" if cluster.connected else "polling"
    return JSONResponse(
        {"status": "ready" if ok else "not ready", **checks}, status_code=200 if ok else 503
    )


async def metrics(request: Request) -> Response:
    learner = getattr(request.app.state, "learner", None)
    if learner is not None and learner.ready:
        from app.engine import dbio

        try:
            EVENTS_BEHIND.set(max(0, await dbio.last_event_id() - learner.watermark))
        except Exception:  # the database being down must not hide the other metrics
            log.warning("metrics: could not read the event log", exc_info=True)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
