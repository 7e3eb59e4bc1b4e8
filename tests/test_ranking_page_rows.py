"""The rankings page reads its videos with the ORM's query built once per page size
(app/resolvers/rankings.py ``_page_rows``): the rows must be exactly those of
``videos.dicts_by_ids``, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from app.db.models import Video
from app.resolvers import rankings, videos


async def test_page_rows_match_dicts_by_ids(db: str) -> None:
    ids = []
    for i in range(25):
        video = await Video.create(
            youtube_id=f"pagerows{i:03d}",
            title=f"Title {i}" if i % 3 else None,
            tags=["a", "é"] if i % 2 else None,
            duration_s=60 * i,
            published_at=datetime(2024, 1, 1 + i, 12, tzinfo=UTC) if i % 4 else None,
            metadata_fetched_at=datetime(2024, 2, 1, tzinfo=UTC) if i % 5 else None,
        )
        ids.append(video.id)
    # the same page size twice (the second time from the built query), other sizes,
    # an id that no longer exists, and an empty page
    for page in (ids[:20], ids[5:], ids[:20], ids[:1], [*ids[:3], 10**9], []):
        expected = await videos.dicts_by_ids(page)
        got = await rankings._page_rows(page)
        assert got == expected
        assert [list(row.items()) for row in got.values()] == [
            list(row.items()) for row in expected.values()
        ]
