"""One real server per backend for the whole API suite.

``api`` starts uvicorn on a free loopback port with the app's lifespan (database,
learner, cache), loaded with the 17-user Tournesol sample, once per backend:
SQLite + memory cache, and PostgreSQL + Redis (skipped, with the reason, when they
do not run; mandatory with SUNRANK_TEST_SERVICES=required). Tests talk to it over
real HTTP and WebSocket, and read the database through their own connection.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn

from app.config import Settings, load_settings
from app.datasets.importer import import_dataset
from app.datasets.reader import read_dataset
from app.db import connection
from app.main import create_app
from app.server import uvicorn_config
from tests.conftest import (
    PG_HOST,
    PG_PORT,
    REDIS_HOST,
    REDIS_PORT,
    SAMPLE,
    _pg_admin,
    require_service,
)

TABLES = (
    "user", "vouch", "api_token", "video", "comparison", "comparison_score",
    "rating_visibility", "rate_later", "event",
)  # fmt: skip
ADMIN = "root_admin"
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Api:
    """A running server: its base URL, app (for the learner), and DB access."""

    backend: str
    url: str
    app: Any
    settings: Settings
    client: httpx.AsyncClient

    @property
    def learner(self) -> Any:
        return self.app.state.learner

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/graphql"

    async def gql(
        self, query: str, variables: dict | None = None, token: str | None = None
    ) -> dict:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def rows(self, sql: str) -> list[tuple]:
        url = self.settings.db_url
        if url.startswith("sqlite://"):
            with sqlite3.connect(url.removeprefix("sqlite://")) as conn:
                return [tuple(r) for r in conn.execute(sql).fetchall()]
        import asyncpg

        conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"))
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    async def snapshot(self) -> dict[str, Any]:
        """Every row of every table the API writes, and the learner's state."""
        out: dict[str, Any] = {}
        for table in TABLES:
            # an API token's last_used_at moves with every request: leave it out
            columns = "id, user_id, token_sha256, revoked" if table == "api_token" else "*"
            out[table] = await self.rows(f'SELECT {columns} FROM "{table}" ORDER BY id')
        out["learner_version"] = self.learner.version
        out["learner_watermark"] = self.learner.watermark
        out["scores"] = {v: dict(s) for v, s in self.learner._views.items()}
        return out

    async def login(self, username: str, password: str = PASSWORD) -> str:
        body = await self.gql(
            "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) "
            "{ token userErrors { field message code } } }",
            {"u": username, "p": password},
        )
        assert not body["data"]["login"]["userErrors"], body
        return body["data"]["login"]["token"]

    async def register(self, username: str, password: str = PASSWORD) -> str:
        body = await self.gql(
            "mutation($u: String!, $p: String!) { register(input: {username: $u, password: $p}) "
            "{ user { username } userErrors { field message code } } }",
            {"u": username, "p": password},
        )
        assert not body["data"]["register"]["userErrors"], body
        return await self.login(username, password)


async def _prepare_db(db_url: str) -> None:
    await connection.migrate(db_url)
    await connection.init(db_url)
    try:
        await import_dataset(read_dataset(SAMPLE))
        from app import auth
        from app.db.models import User

        hashed = await auth.hash_password(PASSWORD)
        await User.create(username=ADMIN, password_hash=hashed)
        # give two imported contributors a password, to act as them
        await User.filter(username__in=["aidjango", "le_science4all"]).update(password_hash=hashed)
    finally:
        await connection.close()


async def start_server(
    settings: Settings, port: int | None = None
) -> tuple[uvicorn.Server, asyncio.Task, str]:
    """A real uvicorn server on 127.0.0.1 (on ``port``, else a free one)."""
    app = create_app(settings)
    port = port or free_port()
    config = uvicorn_config(
        app, settings, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(600):
        await asyncio.sleep(0.05)
        if server.started:
            break
        if task.done():
            task.result()
    assert server.started, "server did not start"
    return server, task, f"http://127.0.0.1:{port}"


async def stop_server(server: uvicorn.Server, task: asyncio.Task) -> None:
    server.should_exit = True
    await asyncio.wait_for(task, 60)


def backend_settings(request: pytest.FixtureRequest, tmp: Path, **overrides: Any) -> Settings:
    if request.param == "sqlite":
        db_url = f"sqlite://{tmp / 'sunrank.sqlite3'}"
        cache_url = "memory://"
    else:
        require_service("PostgreSQL", PG_HOST, PG_PORT)
        require_service("Redis", REDIS_HOST, REDIS_PORT)
        name = f"sunrank_test_{uuid.uuid4().hex[:12]}"
        db_url = f"postgres://postgres@{PG_HOST}:{PG_PORT}/{name}"
        cache_url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
    values: dict[str, Any] = {
        "database_url": db_url,
        "cache_url": cache_url,
        "cache_namespace": f"sunrank-test-{uuid.uuid4().hex[:12]}",
        "data_dir": tmp / "data",
        "rate_limit_per_minute": 100_000,
        "rate_limit_per_ip_per_minute": 100_000,
        "registrations_per_ip_per_hour": 100_000,  # every test client is 127.0.0.1
        "login_failures_per_account_ip": 100_000,
        "login_failures_per_ip": 100_000,
        "admin_usernames": (ADMIN,),
        # No YouTube here, and snapshots compare video rows: tests/sources starts its
        # own server with the worker on, against a local fake YouTube.
        "metadata_worker": False,
    }
    return load_settings({}, **(values | overrides))


@pytest_asyncio.fixture(
    scope="session",
    loop_scope="session",
    params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])],
)
async def api(request: pytest.FixtureRequest, tmp_path_factory) -> AsyncIterator[Api]:
    tmp = tmp_path_factory.mktemp(f"api-{request.param}")
    async with serving(request.param, backend_settings(request, tmp)) as api:
        yield api


@asynccontextmanager
async def serving(backend: str, settings: Settings, port: int | None = None) -> AsyncIterator[Api]:
    """A real server on ``settings`` with the sample loaded (its PostgreSQL database
    created first and dropped afterwards), on ``port`` or a free one."""
    pg_name = settings.database_url.rsplit("/", 1)[1] if backend == "postgres" else None
    if pg_name:
        await _pg_admin(f'CREATE DATABASE "{pg_name}"')
    try:
        await _prepare_db(settings.db_url)
        server, task, url = await start_server(settings, port)
        try:
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                yield Api(backend, url, server.config.app, settings, client)
        finally:
            await stop_server(server, task)
    finally:
        if pg_name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
