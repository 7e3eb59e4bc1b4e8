"""GraphQL enums shared by inputs and outputs."""

from __future__ import annotations

from enum import Enum, IntEnum
from typing import cast

import strawberry

from app.criteria import LANGUAGES, CriterionName

strawberry.enum(
    CriterionName,
    name="CriterionName",
    description="A criterion of the poll, by Tournesol's name (`largely_recommended` is the "
    "main one).",
)
CriterionEnum = CriterionName  # strawberry.enum returns the class: an alias mypy accepts

LabelLanguage = strawberry.enum(
    cast(  # a functional Enum: mypy cannot see its members
        type[Enum],
        Enum("LabelLanguage", {lang: lang for lang in LANGUAGES}, type=str),  # type: ignore[misc]
    ),
    name="LabelLanguage",
    description="A language labels are written in (ISO 639-1).",
)


@strawberry.enum(description="Why a video is not recommended (Tournesol's reasons).")
class UnsafeReason(Enum):
    INSUFFICIENT_SCORE = "insufficient_score"
    INSUFFICIENT_TRUST = "insufficient_trust"
    UNAVAILABLE = "unavailable"
    MODERATED = "moderated"


@strawberry.enum(description="The scale a comparison's scores are given on: -max..max.")
class ScoreMax(IntEnum):
    # an IntEnum: the learner, the database and validation see the plain number
    TEN = 10
    TWO = 2


# strawberry.enum_value() would make the members' values objects, not ints
for _value in ScoreMax.__strawberry_definition__.values:  # type: ignore[attr-defined]
    _value.description = {
        "TEN": "-10..10, Tournesol's slider.",
        "TWO": "-2..2, Tournesol's five buttons.",
    }[_value.name]


@strawberry.enum(description="Why a pair is suggested for comparison.")
class SuggestionReason(Enum):
    RATE_LATER = strawberry.enum_value(
        "in your rate-later list", description="One of the videos is in your rate-later list."
    )
    UNCERTAIN_SCORE = strawberry.enum_value(
        "uncertain score", description="Their scores are uncertain: a comparison helps most."
    )
