"""Tortoise configuration and the one way to open and migrate the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate as tortoise_migrate

from app.config import Settings

APP_LABEL = "models"
MIGRATIONS_MODULE = "app.db.migrations"


def tortoise_config(db_url: str) -> dict[str, Any]:
    if db_url.startswith(("postgres://", "postgresql://")):
        # Tortoise names its asyncpg backend "asyncpg"; accept the usual spelling too.
        db_url = "asyncpg://" + db_url.split("://", 1)[1]
    # Tortoise caches generated SQL per connection *name* (EXECUTOR_CACHE), not per
    # dialect: naming the connection after its backend keeps a process that opens
    # SQLite then PostgreSQL (the test suite) from sending SQLite SQL to PostgreSQL.
    name = db_url.split("://", 1)[0]
    return {
        "connections": {name: db_url},
        "apps": {
            APP_LABEL: {
                "models": ["app.db.models"],
                "default_connection": name,
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def ensure_sqlite_dir(db_url: str) -> None:
    if db_url.startswith("sqlite://") and ":memory:" not in db_url:
        Path(db_url.removeprefix("sqlite://")).parent.mkdir(parents=True, exist_ok=True)


async def migrate(db_url: str) -> None:
    """Apply every pending migration (idempotent)."""
    ensure_sqlite_dir(db_url)
    # A context of its own, so the migration run leaves no ORM state behind.
    async with TortoiseContext():
        await tortoise_migrate(config=tortoise_config(db_url))


async def init(db_url: str) -> None:
    ensure_sqlite_dir(db_url)
    await Tortoise.init(config=tortoise_config(db_url), _enable_global_fallback=True)


async def close() -> None:
    await Tortoise.close_connections()


@asynccontextmanager
async def database(settings: Settings, *, run_migrations: bool = True) -> AsyncIterator[None]:
    """Open the database for a CLI command (the server uses RegisterTortoise)."""
    if run_migrations:
        await migrate(settings.db_url)
    await init(settings.db_url)
    try:
        yield
    finally:
        await close()


# For the developer tool: `tortoise -c app.db.connection.TORTOISE_ORM makemigrations`
# (writes app/db/migrations/; the database it names is never written by that command).
TORTOISE_ORM = tortoise_config("sqlite://:memory:")
