"""Video lookups for the API: metadata filters, keyset pages on the primary key,
live scores from the learner, and ``addVideo``."""

from __future__ import annotations

import re
from typing import Any, cast

from tortoise.exceptions import IntegrityError

from app.criteria import MAIN_CRITERION
from app.db import search, validation
from app.db.models import Video
from app.db.validation import InvalidInput
from app.resolvers import connections
from app.resolvers.connections import Page, Window
from app.resolvers.pagination import MAX_ID

CURSOR_KIND = "video"
MAX_SEARCH = 200
MAX_LANGUAGES = 20
LANGUAGE_RE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")


def check_filter(flt: dict[str, Any] | None) -> dict[str, Any]:
    """Validate a ``VideoFilter`` (as a dict of snake_case keys); drops empty keys."""
    flt = {k: v for k, v in (flt or {}).items() if v is not None and v != ""}
    if len(flt.get("search", "")) > MAX_SEARCH:
        raise InvalidInput("filter.search", f"at most {MAX_SEARCH} characters", "TOO_LONG")
    for key, name in (
        ("min_duration_seconds", "minDurationSeconds"),
        ("max_duration_seconds", "maxDurationSeconds"),
    ):
        if not 0 <= flt.get(key, 0) <= MAX_ID:
            raise InvalidInput(f"filter.{name}", "must be between 0 and 2³¹-1", "OUT_OF_RANGE")
    if flt.get("min_duration_seconds", 0) > flt.get("max_duration_seconds", MAX_ID):
        raise InvalidInput(
            "filter.maxDurationSeconds", "is below minDurationSeconds", "EMPTY_RANGE"
        )
    if "languages" in flt:
        languages = flt["languages"]
        if len(languages) > MAX_LANGUAGES:
            raise InvalidInput("filter.languages", f"at most {MAX_LANGUAGES}", "TOO_LONG")
        for i, language in enumerate(languages):
            if not LANGUAGE_RE.fullmatch(language):
                raise InvalidInput(
                    f"filter.languages[{i}]", "a language code, such as en or pt-BR", "BAD_LANGUAGE"
                )
        flt["languages"] = sorted(set(languages))
    # In UTC, naive meaning UTC: SQLite compares the stored text, so both sides of a
    # comparison must carry the same offset (and naive with aware cannot compare).
    # An instant beyond the years 1..9999 in UTC lies before (or after) every video.
    for key, name in (
        ("published_after", "publishedAfter"),
        ("published_before", "publishedBefore"),
    ):
        if key in flt:
            flt[key] = validation.utc(flt[key], f"filter.{name}", clamp=True)
    after, before = flt.get("published_after"), flt.get("published_before")
    if after and before and after > before:
        raise InvalidInput("filter.publishedBefore", "is before publishedAfter", "EMPTY_RANGE")
    return flt


def apply_filter(query: Any, flt: dict[str, Any]) -> Any:
    if (matches := flt.get("search_ids")) is not None:  # see resolve_search
        query = query.filter(id__in=matches)
    if language := flt.get("language"):
        query = query.filter(language=language)
    if languages := flt.get("languages"):
        query = query.filter(language__in=languages)
    if (shortest := flt.get("min_duration_seconds")) is not None:
        query = query.filter(duration_s__gte=shortest)
    if uploader := flt.get("uploader"):
        query = query.filter(uploader=uploader)
    if (after := flt.get("published_after")) is not None:
        query = query.filter(published_at__gte=after)
    if (before := flt.get("published_before")) is not None:
        query = query.filter(published_at__lte=before)
    if (duration := flt.get("max_duration_seconds")) is not None:
        query = query.filter(duration_s__lte=duration)
    return query


async def resolve_search(flt: dict[str, Any]) -> dict[str, Any]:
    """``search`` → ``search_ids``: the videos whose title, channel, description or
    tags match every word, accents and case aside (app/db/search.py), or whose
    YouTube id it is."""
    if not (text := flt.get("search")):
        return flt
    is_id = validation.YOUTUBE_ID_RE.fullmatch(text.strip())
    if not (is_id or search.words(text)):  # only spaces and punctuation: no filter
        return {k: v for k, v in flt.items() if k != "search"}
    ids = await search.matching_ids(text)
    if is_id:
        ids += cast(
            list[int], await Video.filter(youtube_id=text.strip()).values_list("id", flat=True)
        )
    return {k: v for k, v in flt.items() if k != "search"} | {"search_ids": sorted(set(ids))}


async def filtered_ids(flt: dict[str, Any]) -> list[int]:
    flt = await resolve_search(flt)
    return await apply_filter(Video.all(), flt).values_list("id", flat=True)


async def page(win: Window, flt: dict[str, Any] | None = None) -> Page:
    """A page of the known videos matching ``flt``, by id."""
    flt = await resolve_search(check_filter(flt))
    return await connections.by_id(apply_filter(Video.all(), flt), win, CURSOR_KIND, lambda v: v.id)


async def by_youtube_ids(youtube_ids: list[str]) -> dict[str, Video]:
    # Only well-formed ids can exist; the others (say a NUL decoded from a node id,
    # which PostgreSQL would reject) are not looked up at all.
    valid = [y for y in youtube_ids if validation.YOUTUBE_ID_RE.fullmatch(y)]
    return {v.youtube_id: v for v in await Video.filter(youtube_id__in=valid)} if valid else {}


async def by_ids(ids: list[int]) -> dict[int, Video]:
    return {v.id: v for v in await Video.filter(id__in=ids)} if ids else {}


async def count(flt: dict[str, Any] | None = None) -> int:
    flt = await resolve_search(check_filter(flt))
    return await apply_filter(Video.all(), flt).count()


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
        "description": video.description,
        "tags": video.tags,
        "language": video.language,
        "duration_s": video.duration_s,
        "published_at": video.published_at.isoformat() if video.published_at else None,
        "availability": video.availability,
        "metadata_fetched_at": (
            video.metadata_fetched_at.isoformat() if video.metadata_fetched_at else None
        ),
    }


DICT_FIELDS = (
    "id", "youtube_id", "title", "uploader", "description", "tags", "language", "duration_s",
    "published_at", "availability", "metadata_fetched_at",
)  # fmt: skip


async def dicts_by_ids(ids: list[int]) -> dict[int, dict[str, Any]]:
    """:func:`as_dict` of the videos with these ids, read as plain rows (no model
    instances: rankings read 20 per request on their hot path)."""
    if not ids:
        return {}
    rows = (shape_row(row) for row in await Video.filter(id__in=ids).values(*DICT_FIELDS))
    return {row["pk"]: row for row in rows}


def shape_row(row: dict[str, Any]) -> dict[str, Any]:
    """A ``DICT_FIELDS`` row as :func:`as_dict` shapes it (``pk``, ISO dates), in place."""
    row["pk"] = row.pop("id")
    for key in ("published_at", "metadata_fetched_at"):
        if row[key] is not None:
            row[key] = row[key].isoformat()
    return row


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


READ_ONLY_MESSAGE = (
    "video metadata comes from YouTube and is fetched in the background; "
    "an admin can correct it with setVideoMetadata"
)


async def add_video(
    youtube_id: str, metadata: dict[str, object] | None = None
) -> tuple[Video, bool]:
    """Create the video, or return the existing one; its metadata is fetched from
    YouTube in the background (app/sources/queue.py), never taken from the client:
    any non-null ``metadata`` field is refused (``READ_ONLY``) and nothing is written."""
    validation.youtube_id(youtube_id, "youtubeId")
    for name, value in (metadata or {}).items():
        if value is not None:
            raise InvalidInput(name, READ_ONLY_MESSAGE, "READ_ONLY")
    video = await Video.get_or_none(youtube_id=youtube_id)
    if video is not None:
        return video, False
    try:
        return await Video.create(youtube_id=youtube_id), True
    except IntegrityError:  # created concurrently
        return await Video.get(youtube_id=youtube_id), False


async def ensure(youtube_ids: list[str]) -> tuple[dict[str, Video], bool]:
    """The videos with these (valid) ids, creating those not known yet, as
    Tournesol does for a comparison naming a new video; and whether any was created."""
    found = await by_youtube_ids(youtube_ids)
    created = False
    for youtube_id in youtube_ids:
        if youtube_id not in found:
            found[youtube_id], new = await add_video(youtube_id)
            created |= new
    return found, created


def is_safe(learner: Any, video_id: int) -> bool:
    return bool(learner.is_safe(video_id))
