"""Input types: one ``input:`` object per mutation, filters and weights."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry


@strawberry.input(description="Metadata filters; every given field must match.")
class VideoFilter:
    search: str | None = strawberry.field(
        default=None, description="Substring of title or uploader, or an exact YouTube id."
    )
    language: str | None = None
    uploader: str | None = None
    published_after: datetime | None = None
    published_before: datetime | None = None
    max_duration_seconds: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "search": self.search,
            "language": self.language,
            "uploader": self.uploader,
            "published_after": self.published_after,
            "published_before": self.published_before,
            "max_duration_seconds": self.max_duration_seconds,
        }


def filter_dict(flt: VideoFilter | None) -> dict[str, Any] | None:
    return flt.as_dict() if flt is not None else None


@strawberry.input
class CriterionWeightInput:
    criterion: str
    weight: float = strawberry.field(description="0..100; 0 leaves the criterion out.")


@strawberry.input
class CredentialsInput:
    username: str
    password: str


@strawberry.input
class LogoutInput:
    all_tokens: bool = strawberry.field(
        default=False, description="Revoke every token of the account, not only this one."
    )


@strawberry.input
class AddVideoInput:
    youtube_id: str
    title: str | None = None
    uploader: str | None = None
    language: str | None = None
    duration_seconds: int | None = None
    published_at: datetime | None = None


@strawberry.input
class ScoreInput:
    criterion: str
    score: int = strawberry.field(description="-scoreMax..scoreMax; negative prefers videoA.")
    score_max: int = strawberry.field(default=10, description="10 (slider) or 2 (buttons).")


@strawberry.input
class SubmitComparisonInput:
    video_a: str = strawberry.field(description="YouTube id.")
    video_b: str = strawberry.field(description="YouTube id.")
    scores: list[ScoreInput]


@strawberry.input(description="Either `id`, or `videoA` and `videoB`.")
class DeleteComparisonInput:
    id: strawberry.ID | None = None
    video_a: str | None = None
    video_b: str | None = None


@strawberry.input
class RatingVisibilityInput:
    youtube_id: str
    is_public: bool


@strawberry.input
class VideoInput:
    youtube_id: str


@strawberry.input
class UsernameInput:
    username: str


@strawberry.input
class SetPretrustInput:
    username: str
    pretrust: float = strawberry.field(description="0..1.")


@strawberry.input
class RefitInput:
    client_mutation_id: str | None = strawberry.field(
        default=None, description="Echoed back in the payload (Relay convention)."
    )
