"""Video lookups for the API: keyset pages on the primary key."""

from __future__ import annotations

from app.db.models import Video
from app.resolvers.pagination import check_first, decode_cursor, encode_cursor

CURSOR_KIND = "video"


async def page(first: int, after: str | None) -> tuple[list[tuple[str, Video]], bool]:
    """The next ``first`` videos by id after ``after``, and whether more follow."""
    check_first(first)
    query = Video.all().order_by("id")
    if after is not None:
        (last_id,) = decode_cursor(CURSOR_KIND, after, 1)
        query = query.filter(id__gt=int(last_id))
    rows = await query.limit(first + 1)
    return [(encode_cursor(CURSOR_KIND, v.id), v) for v in rows[:first]], len(rows) > first


async def by_youtube_ids(youtube_ids: list[str]) -> dict[str, Video]:
    return {v.youtube_id: v for v in await Video.filter(youtube_id__in=youtube_ids)}


async def count() -> int:
    return await Video.all().count()
