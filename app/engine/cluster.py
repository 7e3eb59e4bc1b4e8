"""Equal server processes on one PostgreSQL database.

Every process serves reads and writes and keeps its own learner following the event
log. This module gives each one a dedicated PostgreSQL session that:

- ``LISTEN``s to ``sunrank_events`` (one notification per committed event, sent by
  the trigger of migration 0050) and ``sunrank_checkpoints`` (a fitted state was
  published), and wakes the learner on each; the learner still polls once a second,
  the fallback if a notification is ever missed;
- elects the refit leader: every ``LEADER_POLL_S`` it tries the session-level
  advisory lock ``LEADER_LOCK``; the process holding it runs refits, score-table
  flushes and scheduled exports, and publishes fitted states into
  ``learner_checkpoint``. The lock lives as long as the session, so a leader that
  dies (even ``kill -9``) or loses its connection loses it at once and another
  process takes it at its next try. A leader that cannot reach the database for
  ``LEADER_POLL_S`` + ``HEALTH_TIMEOUT_S`` steps down before anyone can take over.

Published fitted states are the bytes of a checkpoint directory
(app/learner/checkpoint.py, which stays file based and pure) packed as a tar.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from app.engine.leader import LEADER_LOCK

log = logging.getLogger("sunrank.cluster")

EVENTS_CHANNEL = "sunrank_events"
CHECKPOINTS_CHANNEL = "sunrank_checkpoints"
LEADER_POLL_S = 1.0
HEALTH_TIMEOUT_S = 3.0


def pack(directory: Path) -> bytes:
    """A checkpoint directory → tar bytes (its files at the top level)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=str(Path(directory.name) / path.relative_to(directory)))
    return buf.getvalue()


def unpack(data: bytes, root: Path) -> None:
    """Tar bytes from :func:`pack` → ``root/<checkpoint dir>``."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(root, filter="data")  # "data": no absolute paths, links or devices


def asyncpg_url(db_url: str) -> str:
    return "postgresql://" + db_url.split("://", 1)[1]


class Cluster:
    """Leader election and change notifications on one dedicated PostgreSQL session.

    ``on_event()`` runs for each event notification, ``on_checkpoint()`` for each
    published state, and ``on_leadership(leads)`` when this process gains or loses
    the lead (awaited, one at a time, from the election task).
    """

    def __init__(
        self,
        db_url: str,
        *,
        on_event: Callable[[], None],
        on_checkpoint: Callable[[], None],
        on_leadership: Callable[[bool], Awaitable[None]],
    ):
        self.url = asyncpg_url(db_url)
        self.on_event = on_event
        self.on_checkpoint = on_checkpoint
        self.on_leadership = on_leadership
        self.leads = False
        self.connected = False
        self._conn: Any = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Connect and try the lead once (so the first process leads from its start),
        then keep trying in the background."""
        await self._step()
        self._task = asyncio.create_task(self._run(), name="cluster-election")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._drop()  # ends the session: the lock is released at once

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(LEADER_POLL_S)
            await self._step()

    async def _step(self) -> None:
        import asyncpg

        try:
            if self._conn is None or self._conn.is_closed():
                await self._connect()
            if self.leads:
                await self._conn.fetchval("SELECT 1", timeout=HEALTH_TIMEOUT_S)
            elif await self._conn.fetchval(
                "SELECT pg_try_advisory_lock($1)", LEADER_LOCK, timeout=HEALTH_TIMEOUT_S
            ):
                log.info("this process now leads refits")
                self.leads = True
                await self.on_leadership(True)
        except (asyncpg.PostgresError, OSError, TimeoutError, asyncpg.InterfaceError) as exc:
            log.warning("cluster session lost (%s: %s); reconnecting", type(exc).__name__, exc)
            await self._drop()

    async def _connect(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.url, timeout=HEALTH_TIMEOUT_S)
        await conn.add_listener(EVENTS_CHANNEL, lambda *_: self.on_event())
        await conn.add_listener(CHECKPOINTS_CHANNEL, lambda *_: self.on_checkpoint())
        self._conn, self.connected = conn, True
        self.on_event()  # notifications may have been missed while disconnected

    async def _drop(self) -> None:
        conn, self._conn, self.connected = self._conn, None, False
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), HEALTH_TIMEOUT_S)
            if not conn.is_closed():
                conn.terminate()
        if self.leads:
            log.warning("this process no longer leads refits")
            self.leads = False
            await self.on_leadership(False)
