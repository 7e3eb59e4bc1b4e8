"""Admin overrides of video metadata (``setVideoMetadata``).

Ordinary users never write metadata (YouTube is the source, app/sources). An
admin may set any field, null included ("unknown"); a set field is locked by
default, so later fetches leave it alone, until an admin unlocks it (the video is
then due for a fetch at once).
"""

from __future__ import annotations

import re
from typing import Any

from app.db import validation
from app.db.models import Video
from app.db.validation import InvalidInput
from app.resolvers import videos

# API name → (column, longest text or None)
FIELDS: dict[str, tuple[str, int | None]] = {
    "title": ("title", 500),
    "uploader": ("uploader", 200),
    "description": ("description", 20_000),
    "tags": ("tags", None),
    "language": ("language", 16),
    "durationSeconds": ("duration_s", None),
    "publishedAt": ("published_at", None),
}
MAX_TAGS, MAX_TAG = 100, 500
LANGUAGE_RE = re.compile(r"[a-z]{2,3}")
ADMIN_SOURCE = "admin"


def _check(name: str, value: Any) -> Any:
    """The value to store for field ``name`` (None: unknown)."""
    if value is None:
        return None
    longest = FIELDS[name][1]
    if longest is not None and len(value) > longest:
        raise InvalidInput(name, f"at most {longest} characters", "TOO_LONG")
    if name == "language" and not LANGUAGE_RE.fullmatch(value):
        raise InvalidInput(name, "an ISO 639 code in lower case, like en or fr", "BAD_LANGUAGE")
    if name == "tags":
        if len(value) > MAX_TAGS:
            raise InvalidInput(name, f"at most {MAX_TAGS} tags", "TOO_LONG")
        for i, tag in enumerate(value):
            if len(tag) > MAX_TAG:
                raise InvalidInput(f"tags[{i}]", f"at most {MAX_TAG} characters", "TOO_LONG")
        return list(value)
    if name == "durationSeconds" and value < 0:
        raise InvalidInput(name, "must be ≥ 0", "OUT_OF_RANGE")
    if name == "publishedAt":
        return validation.utc(value, name)
    return value


async def set_metadata(
    ctx: Any, youtube_id: str, given: dict[str, Any], lock: bool, unlock: list[str]
) -> Video:
    """Set the ``given`` fields (API names) of a known video, lock them if ``lock``,
    and unlock the fields named in ``unlock``. Checks everything before writing."""
    ctx.require_admin()
    video = await videos.require(youtube_id, "youtubeId")
    values = {FIELDS[name][0]: _check(name, value) for name, value in given.items()}
    for i, name in enumerate(unlock):
        if name not in FIELDS:
            raise InvalidInput(
                f"unlock[{i}]", f"one of {', '.join(FIELDS)}, got {name!r}", "UNKNOWN_FIELD"
            )
    unlocked = {FIELDS[name][0] for name in unlock}
    if overlap := unlocked & set(values) if lock else set():
        raise InvalidInput("unlock", f"{', '.join(sorted(overlap))}: set and unlocked", "CONFLICT")
    if not values and not unlocked:
        raise InvalidInput("", "give at least one field to set or unlock", "NOTHING_TO_DO")
    locked = set(video.locked_fields or ())
    locked = (locked | set(values) if lock else locked) - unlocked
    updates: dict[str, Any] = values | {"locked_fields": sorted(locked) or None}
    if unlocked:
        updates["metadata_due_at"] = None  # refetch what is no longer locked, soon
    for column, value in updates.items():
        setattr(video, column, value)
    await video.save(update_fields=list(updates))
    ctx.catalog.forget()  # committed: rankings see it at once
    return video
