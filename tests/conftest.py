"""Shared fixtures: real databases (a SQLite file; PostgreSQL on 127.0.0.1 when
it runs), never mocks.

Tests that need PostgreSQL or Redis skip, with the reason, when the server is not
reachable; with ``SUNRANK_TEST_SERVICES=required`` (set by .ci/run) they fail
instead, so CI cannot silently skip them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.db import connection

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT / "data" / "tournesol"
TINY = DATASETS / "tiny_tournesol_2024-01"
SAMPLE = DATASETS / "sample_2024-12_17users"
PG_HOST, PG_PORT = os.environ.get("SUNRANK_TEST_PG_HOST", "127.0.0.1"), 5432
STARTUP_TIMEOUT = 300  # seconds for an app's lifespan startup in tests
REDIS_HOST, REDIS_PORT = os.environ.get("SUNRANK_TEST_REDIS_HOST", "127.0.0.1"), 6379


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("SUNRANK_TEST_SERVICES") == "required":
        pytest.fail(message + " (SUNRANK_TEST_SERVICES=required)")
    pytest.skip(message)


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(user="postgres", host=PG_HOST, port=PG_PORT, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards.

    Synchronous (its own short event loop) so that any fixture can depend on it.
    """
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    name = f"sunrank_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgres://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'sunrank.sqlite3'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'sunrank.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[str]:
    """A migrated database, opened for the ORM."""
    await connection.migrate(db_url)
    await connection.init(db_url)
    try:
        yield db_url
    finally:
        await connection.close()


@asynccontextmanager
async def empty_database_like(db_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """Switch the ORM to a fresh, migrated database of the same kind as ``db_url``;
    back to ``db_url`` afterwards."""
    if db_url.startswith("sqlite"):
        other, name = f"sqlite://{tmp_path / f'other-{uuid.uuid4().hex[:8]}.sqlite3'}", None
    else:
        name = f"sunrank_test_{uuid.uuid4().hex[:12]}"
        await _pg_admin(f'CREATE DATABASE "{name}"')
        other = db_url.rsplit("/", 1)[0] + f"/{name}"
    await connection.close()
    await connection.migrate(other)
    await connection.init(other)
    try:
        yield other
    finally:
        await connection.close()
        if name is not None:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.init(db_url)


@asynccontextmanager
async def running_app(db_url: str, data_dir: Path) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The real app with its lifespan (learner, cache) on ``db_url``, checkpoints in
    ``data_dir``, and an HTTP client for it. The ORM must be closed beforehand."""
    from app.config import load_settings
    from app.main import create_app

    app = create_app(
        load_settings({}, database_url=db_url, data_dir=data_dir, metadata_worker=False)
    )
    # startup fits the learner: seconds on a busy machine, past the library's 5 s default
    async with LifespanManager(app, startup_timeout=STARTUP_TIMEOUT) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app, client


@pytest.fixture
def env_for(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for a ``sunrank`` subprocess with its own data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUNRANK_")}
    env["SUNRANK_DATA_DIR"] = str(tmp_path / "data")
    env["SUNRANK_METADATA_WORKER"] = "false"  # no YouTube here (tests/sources has its own)
    yield env
