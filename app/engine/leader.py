"""The exclusive learner lock: who may own the learner's checkpoints alone.

- SQLite: ``sunrank serve`` (and any ASGI server running ``create_app``) holds an
  exclusive OS lock on ``<data dir>/learner.lock`` for the life of the process
  (``filelock``: ``flock`` on Unix, ``LockFileEx`` on Windows; it vanishes with the
  process, even on ``kill -9``): one server process per SQLite
  database, a second one refuses to start with one clear line.
- PostgreSQL: ``LEADER_LOCK`` is the session-level advisory lock of the refit
  leader (app/engine/cluster.py elects it among any number of server processes);
  ``sunrank train`` takes it too, so it refuses while a server leads refits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import filelock

LEADER_LOCK = 0x53554E4C  # "SUNL"


class LeaderLockError(RuntimeError):
    pass


class LeaderLock:
    def __init__(self, db_url: str, data_dir: Path):
        self.db_url = db_url
        self.data_dir = data_dir
        self._file: filelock.BaseFileLock | None = None
        self._pg: Any = None

    async def acquire(self) -> None:
        if self.db_url.startswith("sqlite:"):
            self._acquire_file()
        else:
            await self._acquire_postgres()

    def _acquire_file(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "learner.lock"
        # Not thread-local: the lock belongs to the process, whichever thread releases it.
        # Held while this object lives: filelock releases it when it is garbage-collected.
        lock = filelock.FileLock(path, thread_local=False)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            raise LeaderLockError(
                f"another Sunrank server already runs the learner for {path.parent} "
                "(SQLite allows one server process: use PostgreSQL for several)"
            ) from None
        self._file = lock

    async def _acquire_postgres(self) -> None:
        import asyncpg

        url = "postgresql://" + self.db_url.split("://", 1)[1]
        self._pg = await asyncpg.connect(url)
        if not await self._pg.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK):
            await self._pg.close()
            self._pg = None
            raise LeaderLockError("a Sunrank server leads refits on this PostgreSQL database")

    async def release(self) -> None:
        if self._file is not None:
            self._file.release()
            self._file = None
        if self._pg is not None:
            await self._pg.close()  # ends the session, releasing the advisory lock
            self._pg = None
