"""Run the app under uvicorn with a graceful stop that exits 0."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

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


def run_server(settings: Settings) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # keep the logging set up by the CLI
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    GracefulServer(config).run()
