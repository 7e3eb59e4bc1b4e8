"""Run the app under uvicorn with a graceful stop that exits 0."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import uvicorn

from app.config import Settings
from app.main import create_app

GRACEFUL_SHUTDOWN_S = 20  # in-flight requests get this long; then checkpoint + flush


class GracefulServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM once its graceful shutdown is done, so the process
    would end "killed by signal"; a completed graceful stop is a normal exit (0)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:  # runs before uvicorn's re-raise of the captured signals
                self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]


def uvicorn_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """uvicorn's settings for Sunrank (the tests start their servers with these too).

    uvicorn's own proxy-header handling is off: it would believe X-Forwarded-For
    from 127.0.0.1 by default, letting any local client pick its address; the app
    applies ``SUNRANK_FORWARDED_ALLOW_IPS`` itself (app.main.edge_middleware).
    WebSocket frames are capped at the body limit by the protocol layer, before
    they are buffered whole."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "log_config": None,  # keep the logging set up by the CLI
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
        "proxy_headers": False,
        "ws_max_size": settings.max_body_bytes,
        **overrides,
    }
    return uvicorn.Config(app, **options)


def run_server(settings: Settings) -> None:
    GracefulServer(uvicorn_config(create_app(settings), settings)).run()
