"""One learner per database: the process that serves must hold the leader lock.

Each server process keeps its own in-memory learner; two of them on one database
would both refit, checkpoint into the same directory and flush scores over each
other. So ``sunrank serve`` (and any ASGI server running ``create_app``, e.g.
``uvicorn --workers 4``) refuses to start a second learner on the same database:

- PostgreSQL: a session-level advisory lock, held on a dedicated connection for
  the life of the process (it vanishes with the process, even on ``kill -9``);
- SQLite: an exclusive ``flock`` on ``<data dir>/learner.lock`` (same property).

Scaling out is planned as one writer (this process) plus read replicas that follow
the event log (the service already catches up with events it did not write); see
README.md "Deployment".
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LEADER_LOCK = 0x53554E4C  # "SUNL"


class LeaderLockError(RuntimeError):
    pass


class LeaderLock:
    def __init__(self, db_url: str, data_dir: Path):
        self.db_url = db_url
        self.data_dir = data_dir
        self._fd: int | None = None
        self._pg = None

    async def acquire(self) -> None:
        if self.db_url.startswith("sqlite:"):
            self._acquire_file()
        else:
            await self._acquire_postgres()

    def _acquire_file(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "learner.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LeaderLockError(
                f"another Sunrank server already runs the learner for {path.parent} "
                "(one server process per database: do not start several workers)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    async def _acquire_postgres(self) -> None:
        import asyncpg

        url = "postgresql://" + self.db_url.split("://", 1)[1]
        self._pg = await asyncpg.connect(url)
        if not await self._pg.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK):
            await self._pg.close()
            self._pg = None
            raise LeaderLockError(
                "another Sunrank server already runs the learner for this PostgreSQL database "
                "(one server process per database: do not start several workers)"
            )

    async def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
        if self._pg is not None:
            await self._pg.close()  # ends the session, releasing the advisory lock
            self._pg = None
