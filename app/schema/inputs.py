"""Input types: one ``input:`` object per mutation, filters and weights."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from app.schema.enums import CriterionEnum, ScoreMax


@strawberry.input(description="Metadata filters; every given field must match.")
class VideoFilter:
    search: str | None = strawberry.field(
        default=None,
        description="Words to find in the title, channel, description or tags, accents and "
        "case aside (each word matches the start of a word), or an exact YouTube id.",
    )
    language: str | None = strawberry.field(
        default=None, description="One language (ISO 639-1); see `languages` for several."
    )
    languages: list[str] | None = strawberry.field(
        default=None, description="Any of these languages (ISO 639-1, at most 20)."
    )
    uploader: str | None = strawberry.field(default=None, description="The exact channel name.")
    published_after: datetime | None = None
    published_before: datetime | None = None
    min_duration_seconds: int | None = None
    max_duration_seconds: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "search": self.search,
            "language": self.language,
            "languages": self.languages,
            "min_duration_seconds": self.min_duration_seconds,
            "uploader": self.uploader,
            "published_after": self.published_after,
            "published_before": self.published_before,
            "max_duration_seconds": self.max_duration_seconds,
        }


def filter_dict(flt: VideoFilter | None) -> dict[str, Any] | None:
    return flt.as_dict() if flt is not None else None


@strawberry.input
class CriterionWeightInput:
    criterion: CriterionEnum  # type: ignore[valid-type]
    weight: float = strawberry.field(description="0..100; 0 leaves the criterion out.")


def _weight_from_input(cls: type, value: Any, context: Any) -> Any:
    """What strawberry builds field by field (``from_input`` hook), directly: both
    fields are required and arrive converted (an enum member, a float). Converting
    four weights field by field was ~5 % of a cold ``rankings`` request."""
    return cls(criterion=value.get("criterion"), weight=value.get("weight"))


CriterionWeightInput.__strawberry_definition__.from_input = _weight_from_input  # type: ignore[attr-defined]


@strawberry.input
class CredentialsInput:
    username: str
    password: str


@strawberry.input
class LogoutInput:
    all_tokens: bool = strawberry.field(
        default=False, description="Revoke every token of the account, not only this one."
    )


READ_ONLY = "Metadata comes from YouTube; a non-null value is refused (READ_ONLY)."


@strawberry.input
class AddVideoInput:
    youtube_id: str
    title: str | None = strawberry.field(default=None, deprecation_reason=READ_ONLY)
    uploader: str | None = strawberry.field(default=None, deprecation_reason=READ_ONLY)
    language: str | None = strawberry.field(default=None, deprecation_reason=READ_ONLY)
    duration_seconds: int | None = strawberry.field(default=None, deprecation_reason=READ_ONLY)
    published_at: datetime | None = strawberry.field(default=None, deprecation_reason=READ_ONLY)


@strawberry.input
class ScoreInput:
    criterion: CriterionEnum  # type: ignore[valid-type]
    score: int = strawberry.field(description="-scoreMax..scoreMax; negative prefers videoA.")
    score_max: ScoreMax = strawberry.field(
        default=ScoreMax.TEN, description="The scale of `score`: TEN (slider) or TWO (buttons)."
    )


@strawberry.input
class SubmitComparisonInput:
    video_a: str = strawberry.field(description="YouTube id.")
    video_b: str = strawberry.field(description="YouTube id.")
    scores: list[ScoreInput] = strawberry.field(
        description="A new comparison must score the main criterion (largely_recommended); "
        "the others are optional."
    )
    merge: bool = strawberry.field(
        default=False,
        description="Updating: false (default, as Tournesol) replaces the stored scores with "
        "`scores`, which must then score the main criterion too; true merges `scores` into "
        "them (criteria not given keep their score).",
    )


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


@strawberry.input(description="Mark a video unsafe to recommend, or lift that.")
class ModerateVideoInput:
    youtube_id: str
    unsafe: bool = strawberry.field(description="true: unsafe (MODERATED); false: lift it.")
    reason: str | None = strawberry.field(
        default=None, description="Why (required to mark unsafe; at most 500 characters)."
    )
