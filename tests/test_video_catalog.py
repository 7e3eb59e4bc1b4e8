"""What rankings read of the video table, kept briefly in memory
(app/resolvers/catalog.py): the same rows as the database, a write of this process
seen at once (``forget``), anyone else's within ``max_age``; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from app.db.models import Video, VideoModeration
from app.resolvers import catalog as catalog_module
from app.resolvers import videos
from app.resolvers.catalog import VideoCatalog


async def _videos(n: int) -> list[int]:
    ids = []
    for i in range(n):
        video = await Video.create(
            youtube_id=f"catalog{i:04d}",
            title=f"Title {i}" if i % 3 else None,
            tags=["a", "é"] if i % 2 else None,
            duration_s=60 * i,
            published_at=datetime(2024, 1, 1 + i, 12, tzinfo=UTC) if i % 4 else None,
        )
        ids.append(video.id)
    return ids


async def test_rows_are_the_databases_and_writes_elsewhere_show_within_max_age(db: str) -> None:
    ids = await _videos(25)
    catalog = VideoCatalog(max_age=3600.0)
    for page in (ids[:20], ids[5:], ids[:20], [*ids[:3], 10**9], []):
        assert await catalog.rows(page) == await videos.dicts_by_ids(page)
    # another process renames a video: this one keeps what it read, until max_age...
    await Video.filter(id=ids[0]).update(title="Renamed elsewhere")
    assert (await catalog.rows(ids[:1]))[ids[0]]["title"] is None
    # ...or until its own write says so
    catalog.forget()
    assert (await catalog.rows(ids[:1]))[ids[0]]["title"] == "Renamed elsewhere"

    quick = VideoCatalog(max_age=0.2)
    assert (await quick.rows(ids[1:2]))[ids[1]]["title"] == "Title 1"
    await Video.filter(id=ids[1]).update(title="Renamed again")
    await asyncio.sleep(0.3)  # past max_age (waiting, not timing)
    assert (await quick.rows(ids[1:2]))[ids[1]]["title"] == "Renamed again"

    never = VideoCatalog(max_age=0.0)
    await never.rows(ids[2:3])
    await Video.filter(id=ids[2]).update(title="Read every time")
    assert (await never.rows(ids[2:3]))[ids[2]]["title"] == "Read every time"


async def test_a_read_overtaken_by_a_write_is_served_but_not_kept(db, monkeypatch) -> None:
    ids = await _videos(2)
    catalog = VideoCatalog(max_age=3600.0)
    read = videos.dicts_by_ids

    async def read_then_written(wanted):
        rows = await read(wanted)  # what was committed when the read began...
        await Video.filter(id=ids[0]).update(title="Written meanwhile")
        catalog.forget()  # ...then a write of this process commits
        return rows

    monkeypatch.setattr(catalog_module.videos, "dicts_by_ids", read_then_written)
    assert (await catalog.rows(ids[:1]))[ids[0]]["title"] is None  # served as read
    monkeypatch.setattr(catalog_module.videos, "dicts_by_ids", read)
    assert (await catalog.rows(ids[:1]))[ids[0]]["title"] == "Written meanwhile"  # not kept


async def test_hidden_ids_are_unavailable_or_moderated_videos(db: str) -> None:
    """(the moderated ones also answer ``unsafeReasons``)"""
    ids = await _videos(6)
    await Video.filter(id=ids[1]).update(availability="deleted")
    await Video.filter(id=ids[2]).update(availability="private")
    await Video.filter(id=ids[3]).update(availability="ok")
    await VideoModeration.create(video_id=ids[4], reason="spam", moderated_at=datetime.now(UTC))
    catalog = VideoCatalog(max_age=3600.0)
    assert (await catalog.hidden_ids()).tolist() == sorted([ids[1], ids[2], ids[4]])
    assert await catalog.moderated_ids() == {ids[4]}
    await VideoModeration.filter(video_id=ids[4]).delete()
    assert ids[4] in (await catalog.hidden_ids()).tolist()  # elsewhere: within max_age
    catalog.forget()
    assert (await catalog.hidden_ids()).tolist() == sorted([ids[1], ids[2]])
    assert await catalog.moderated_ids() == frozenset()
