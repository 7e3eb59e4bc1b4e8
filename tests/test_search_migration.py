"""Migration 0020 on a populated database (SQLite and PostgreSQL): videos already
there are searchable at once (accents and case aside, tags as words), and undoing
it leaves the videos and their references in place."""

from __future__ import annotations

import importlib

import pytest

from app.db import connection, search
from tests.sources.test_migration import _migrate, _run

pytestmark = pytest.mark.slow  # migrates each database twice or more

MIGRATION = importlib.import_module("app.db.migrations.0020_moderation_search")
BEFORE = MIGRATION.Migration.dependencies[0][1]
POPULATE = [
    """INSERT INTO video (id, youtube_id, title, uploader, description, tags, added_at)
       VALUES (1, 'aaaaaaaaaaa', 'L''École du Vide', 'Chaîne', NULL, '["Électron", "Ça"]',
               '2024-01-01 00:00:00+00:00'),
              (2, 'bbbbbbbbbbb', NULL, NULL, NULL, NULL, '2024-01-01 00:00:00+00:00')""",
]


async def _search(db_url: str, text: str) -> list[int]:
    await connection.init(db_url)
    try:
        return sorted(await search.matching_ids(text))
    finally:
        await connection.close()


async def test_videos_present_before_the_migration_are_searchable(db_url: str) -> None:
    await _migrate(db_url, BEFORE)
    await _run(db_url, POPULATE)
    await _migrate(db_url)
    assert await _search(db_url, "ECOLE vide") == [1]
    assert await _search(db_url, "electron chaine") == [1]
    assert await _search(db_url, "ca") == [1]
    assert await _search(db_url, "vide absent") == []
    # undo: videos stay; redo: searchable again
    await _migrate(db_url, BEFORE)
    (rows,) = await _run(db_url, ["SELECT youtube_id FROM video ORDER BY id"])
    assert rows == [("aaaaaaaaaaa",), ("bbbbbbbbbbb",)]
    await _migrate(db_url)
    assert await _search(db_url, "école") == [1]
