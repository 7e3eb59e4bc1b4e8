"""Inputs of the admin's metadata override (``setVideoMetadata``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

UNSET: Any = strawberry.UNSET


@strawberry.input(
    description="Admin: override a video's metadata. Fields left out are unchanged; "
    "null sets a field to unknown. Set fields are locked (fetches from YouTube leave "
    "them) unless `lock: false`; `unlock` hands fields back to YouTube."
)
class SetVideoMetadataInput:
    youtube_id: str
    title: str | None = UNSET
    uploader: str | None = UNSET
    description: str | None = UNSET
    tags: list[str] | None = UNSET
    language: str | None = strawberry.field(default=UNSET, description="ISO 639, like en.")
    duration_seconds: int | None = UNSET
    published_at: datetime | None = UNSET
    lock: bool = True
    unlock: list[str] = strawberry.field(
        default_factory=list,
        description="Fields to unlock (title, uploader, description, tags, language, "
        "durationSeconds, publishedAt); the video is then fetched again soon.",
    )

    def given(self) -> dict[str, Any]:
        """The fields given (null included), by API name."""
        values = {
            "title": self.title, "uploader": self.uploader, "description": self.description,
            "tags": self.tags, "language": self.language,
            "durationSeconds": self.duration_seconds, "publishedAt": self.published_at,
        }  # fmt: skip
        return {k: v for k, v in values.items() if v is not UNSET}
