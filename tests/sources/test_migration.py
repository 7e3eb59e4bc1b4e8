"""Migration 0010 on a populated database (SQLite and PostgreSQL): nothing that
references a video is lost, "unknown" empty strings become NULL, and the new
columns work."""

from __future__ import annotations

import importlib
import sqlite3
from typing import Any

import pytest
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate as tortoise_migrate

from app.db import connection

pytestmark = pytest.mark.slow  # migrates each database twice or more

MIGRATION = importlib.import_module("app.db.migrations.0010_video_metadata")
BEFORE = MIGRATION.Migration.dependencies[0][1]

POPULATE = [
    """INSERT INTO "user" (id, username, username_key, pretrust, trust, is_admin, created_at)
       VALUES (1, 'alice', 'alice', 0.5, 0.5, FALSE, '2024-01-01 00:00:00+00:00')""",
    """INSERT INTO video (id, youtube_id, title, uploader, language, duration_s, added_at)
       VALUES (1, 'aaaaaaaaaaa', 'Known title', 'Chan', 'en', 61, '2024-01-01 00:00:00+00:00'),
              (2, 'bbbbbbbbbbb', '', '', '', NULL, '2024-01-01 00:00:00+00:00')""",
    """INSERT INTO comparison (id, user_id, video_a_id, video_b_id, created_at, updated_at)
       VALUES (1, 1, 1, 2, '2024-01-01 00:00:00+00:00', '2024-01-01 00:00:00+00:00')""",
    """INSERT INTO comparison_score (id, comparison_id, criterion, score, score_max)
       VALUES (1, 1, 'largely_recommended', 3, 10)""",
    """INSERT INTO rate_later (id, user_id, video_id, added_at)
       VALUES (1, 1, 2, '2024-01-01 00:00:00+00:00')""",
    """INSERT INTO rating_visibility (id, user_id, video_id, is_public) VALUES (1, 1, 1, FALSE)""",
    """INSERT INTO video_score (id, video_id, criterion, score, uncertainty, n_contributors,
       n_comparisons) VALUES (1, 2, 'largely_recommended', 1.5, 0.3, 1, 1)""",
]
DUE_QUERY_PLAN = "EXPLAIN QUERY PLAN SELECT id FROM video WHERE metadata_due_at <= '2024-01-01'"


async def _run(url: str, statements: list[str]) -> list[list[tuple]]:
    if url.startswith("sqlite://"):
        with sqlite3.connect(url.removeprefix("sqlite://")) as conn:
            conn.execute("PRAGMA foreign_keys = ON")
            return [[tuple(r) for r in conn.execute(s).fetchall()] for s in statements]
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://"))
    try:
        return [[tuple(r) for r in await conn.fetch(s)] for s in statements]
    finally:
        await conn.close()


async def _migrate(url: str, target: str | None = None) -> None:
    connection.ensure_sqlite_dir(url)
    async with TortoiseContext():
        kwargs: dict[str, Any] = {"target": f"models.{target}"} if target else {}
        await tortoise_migrate(config=connection.tortoise_config(url), **kwargs)


async def test_migration_keeps_every_reference_and_nulls_unknowns(db_url: str) -> None:
    await _migrate(db_url, BEFORE)
    await _run(db_url, POPULATE)
    await _migrate(db_url)
    tables = (
        "video",
        "comparison",
        "comparison_score",
        "rate_later",
        "rating_visibility",
        "video_score",
    )
    counts = await _run(db_url, [f'SELECT count(*) FROM "{t}"' for t in tables])
    assert [c[0][0] for c in counts] == [2, 1, 1, 1, 1, 1]
    (rows,) = await _run(
        db_url,
        ["SELECT youtube_id, title, uploader, language, duration_s, availability, "
         "metadata_failures, locked_fields FROM video ORDER BY id"],
    )  # fmt: skip
    assert rows == [
        ("aaaaaaaaaaa", "Known title", "Chan", "en", 61, None, 0, None),
        ("bbbbbbbbbbb", None, None, None, None, None, 0, None),
    ]
    # the new shape accepts unknown metadata; the old constraints still hold
    await _run(
        db_url,
        ["INSERT INTO video (id, youtube_id, added_at) VALUES (3, 'ccccccccccc', "
         "'2024-01-01 00:00:00+00:00')"],
    )  # fmt: skip
    try:
        await _run(db_url, ["INSERT INTO video (id, youtube_id, added_at) VALUES (4, 'short', "
                            "'2024-01-01 00:00:00+00:00')"])  # fmt: skip
    except Exception as exc:  # sqlite3.IntegrityError / asyncpg CheckViolationError
        assert "check" in str(exc).lower() or "constraint" in str(exc).lower()
    else:
        raise AssertionError("a malformed youtube_id was stored")
    if db_url.startswith("sqlite"):
        (problems,) = await _run(db_url, ["PRAGMA foreign_key_check"])
        assert problems == []
        (plan,) = await _run(db_url, [DUE_QUERY_PLAN])
        assert "video_metadata_due_at" in str(plan)
    else:
        (indexes,) = await _run(
            db_url, ["SELECT indexname FROM pg_indexes WHERE tablename = 'video'"]
        )
        assert ("video_metadata_due_at",) in indexes
    # and the ORM reads and writes it
    await connection.init(db_url)
    try:
        from app.db.models import Video

        video = await Video.get(youtube_id="bbbbbbbbbbb")
        video.tags, video.locked_fields = ["a", "b"], ["title"]
        await video.save()
        again = await Video.get(youtube_id="bbbbbbbbbbb")
        assert (again.title, again.tags, again.locked_fields) == (None, ["a", "b"], ["title"])
    finally:
        await connection.close()


async def test_downgrade_keeps_every_reference(db_url: str) -> None:
    await _migrate(db_url, BEFORE)
    await _run(db_url, POPULATE)
    await _migrate(db_url)
    await _migrate(db_url, BEFORE)
    tables = ("video", "comparison", "rate_later", "rating_visibility", "video_score")
    counts = await _run(db_url, [f'SELECT count(*) FROM "{t}"' for t in tables])
    assert [c[0][0] for c in counts] == [2, 1, 1, 1, 1]
    (rows,) = await _run(db_url, ["SELECT youtube_id, title FROM video ORDER BY id"])
    assert rows == [("aaaaaaaaaaa", "Known title"), ("bbbbbbbbbbb", "")]
    await _migrate(db_url)  # and up again
