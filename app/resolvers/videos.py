"""Video lookups for the API: metadata filters, keyset pages on the primary key,
live scores from the learner, and ``addVideo``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from app.criteria import MAIN_CRITERION
from app.db import validation
from app.db.models import Video
from app.db.validation import InvalidInput
from app.resolvers.pagination import check_first, decode_cursor, encode_cursor

CURSOR_KIND = "video"
MAX_SEARCH = 200


def check_filter(flt: dict[str, Any] | None) -> dict[str, Any]:
    """Validate a ``VideoFilter`` (as a dict of snake_case keys); drops empty keys."""
    flt = {k: v for k, v in (flt or {}).items() if v is not None and v != ""}
    if len(flt.get("search", "")) > MAX_SEARCH:
        raise InvalidInput("filter.search", f"at most {MAX_SEARCH} characters", "TOO_LONG")
    if flt.get("max_duration_seconds", 0) < 0:
        raise InvalidInput("filter.maxDurationSeconds", "must be ≥ 0", "OUT_OF_RANGE")
    after, before = flt.get("published_after"), flt.get("published_before")
    if after and before and after > before:
        raise InvalidInput("filter.publishedBefore", "is before publishedAfter", "EMPTY_RANGE")
    return flt


def apply_filter(query: Any, flt: dict[str, Any]) -> Any:
    if search := flt.get("search"):
        match = Q(title__icontains=search) | Q(uploader__icontains=search)
        if validation.YOUTUBE_ID_RE.fullmatch(search):
            match |= Q(youtube_id=search)
        query = query.filter(match)
    if language := flt.get("language"):
        query = query.filter(language=language)
    if uploader := flt.get("uploader"):
        query = query.filter(uploader=uploader)
    if (after := flt.get("published_after")) is not None:
        query = query.filter(published_at__gte=after)
    if (before := flt.get("published_before")) is not None:
        query = query.filter(published_at__lte=before)
    if (duration := flt.get("max_duration_seconds")) is not None:
        query = query.filter(duration_s__lte=duration)
    return query


async def filtered_ids(flt: dict[str, Any]) -> list[int]:
    return await apply_filter(Video.all(), flt).values_list("id", flat=True)


async def page(
    first: int, after: str | None, flt: dict[str, Any] | None = None
) -> tuple[list[tuple[str, Video]], bool]:
    """The next ``first`` videos by id after ``after``, and whether more follow."""
    check_first(first)
    query = apply_filter(Video.all(), check_filter(flt)).order_by("id")
    if after is not None:
        (last_id,) = decode_cursor(CURSOR_KIND, after, 1)
        query = query.filter(id__gt=int(last_id))
    rows = await query.limit(first + 1)
    return [(encode_cursor(CURSOR_KIND, v.id), v) for v in rows[:first]], len(rows) > first


async def by_youtube_ids(youtube_ids: list[str]) -> dict[str, Video]:
    return {v.youtube_id: v for v in await Video.filter(youtube_id__in=youtube_ids)}


async def by_ids(ids: list[int]) -> dict[int, Video]:
    return {v.id: v for v in await Video.filter(id__in=ids)} if ids else {}


async def count(flt: dict[str, Any] | None = None) -> int:
    return await apply_filter(Video.all(), check_filter(flt)).count()


async def require(youtube_id: str, field: str) -> Video:
    """The known video with this id, or an ``InvalidInput`` naming ``field``."""
    validation.youtube_id(youtube_id, field)
    video = await Video.get_or_none(youtube_id=youtube_id)
    if video is None:
        raise InvalidInput(
            field, f"unknown video {youtube_id!r}: add it with addVideo first", "UNKNOWN_VIDEO"
        )
    return video


def as_dict(video: Video) -> dict[str, Any]:
    """JSON-able metadata, for caches."""
    return {
        "pk": video.id,
        "youtube_id": video.youtube_id,
        "title": video.title,
        "uploader": video.uploader,
        "language": video.language,
        "duration_s": video.duration_s,
        "published_at": video.published_at.isoformat() if video.published_at else None,
    }


def scores(learner: Any, video_id: int, criteria: list[str] | None) -> list:
    """The video's global ``ScoreView``s, in criteria order, optionally filtered."""
    views = learner.video_scores(video_id)
    if criteria is None:
        return list(views.values())
    for i, c in enumerate(criteria):
        validation.criterion(c, f"criteria[{i}]")
    return [views[c] for c in criteria if c in views]


def tournesol_score(learner: Any, video_id: int) -> float | None:
    view = learner.video_scores(video_id).get(MAIN_CRITERION)
    return None if view is None else view.score


async def add_video(
    youtube_id: str,
    *,
    title: str | None = None,
    uploader: str | None = None,
    language: str | None = None,
    duration_seconds: int | None = None,
    published_at: datetime | None = None,
) -> tuple[Video, bool]:
    """Create the video, or return the existing one (filling metadata it lacks)."""
    validation.youtube_id(youtube_id, "youtubeId")
    limits = {"title": 500, "uploader": 200, "language": 16}
    given = {"title": title, "uploader": uploader, "language": language}
    for name, value in given.items():
        if value is not None and len(value) > limits[name]:
            raise InvalidInput(name, f"at most {limits[name]} characters", "TOO_LONG")
    if duration_seconds is not None and duration_seconds < 0:
        raise InvalidInput("durationSeconds", "must be ≥ 0", "OUT_OF_RANGE")
    fields = {k: v for k, v in given.items() if v is not None}
    if duration_seconds is not None:
        fields["duration_s"] = duration_seconds
    if published_at is not None:
        fields["published_at"] = published_at
    video = await Video.get_or_none(youtube_id=youtube_id)
    if video is None:
        try:
            return await Video.create(youtube_id=youtube_id, **fields), True
        except IntegrityError:  # created concurrently
            video = await Video.get(youtube_id=youtube_id)
    missing = {k: v for k, v in fields.items() if getattr(video, k) in (None, "")}
    if missing:
        for k, v in missing.items():
            setattr(video, k, v)
        await video.save(update_fields=list(missing))
    return video, False


def is_safe(learner: Any, video_id: int) -> bool:
    return bool(learner.is_safe(video_id))
