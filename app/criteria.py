"""The criteria of the "videos" poll, as Tournesol names them (DESIGN.md §2).

The order is part of the on-disk format: the learner indexes criteria by their
position here, and its checkpoints store that index. Append new criteria at the end.

Labels are Tournesol's own wording, per language; ``LANGUAGES[0]`` is the fallback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

LANGUAGES: tuple[str, ...] = ("en", "fr")


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    label: str  # English
    main: bool = False
    labels: dict[str, str] = field(default_factory=dict)  # language → label, English too

    def label_in(self, language: str) -> str:
        return self.labels.get(language, self.label)


def _c(name: str, en: str, fr: str, main: bool = False) -> Criterion:
    return Criterion(name, en, main, {"en": en, "fr": fr})


CRITERIA: tuple[Criterion, ...] = (
    _c("largely_recommended", "Should be largely recommended",
       "Devrait être largement recommandé", main=True),
    _c("reliability", "Reliable and not misleading", "Fiable et pas trompeur"),
    _c("importance", "Important and actionable", "Important et actionnable"),
    _c("engaging", "Engaging and thought-provoking", "Engageant et suscite la réflexion"),
    _c("pedagogy", "Clear and pedagogical", "Clair et pédagogique"),
    _c("layman_friendly", "Layman-friendly", "Accessible aux non initiés"),
    _c("diversity_inclusion", "Diversity and inclusion", "Diversité et inclusion"),
    _c("backfire_risk", "Resilience to backfiring risks",
       "Résilience aux risques de retour de flamme"),
    _c("better_habits", "Encourages better habits", "Encourage de meilleures habitudes"),
    _c("entertaining_relaxing", "Entertaining and relaxing", "Divertissant et relaxant"),
)  # fmt: skip

CRITERION_NAMES: tuple[str, ...] = tuple(c.name for c in CRITERIA)
CRITERION_INDEX: dict[str, int] = {c.name: i for i, c in enumerate(CRITERIA)}
MAIN_CRITERION: str = next(c.name for c in CRITERIA if c.main)
SCORE_MAX_CHOICES: tuple[int, ...] = (2, 10)


class CriterionName(str, Enum):  # noqa: UP042 (str() as the functional Enum had it)
    """The criteria as a Python enum (the GraphQL ``CriterionName``): member names are
    the criteria's own names, so the values on the wire stay Tournesol's strings.
    Spelled out so type checkers know the members; checked against ``CRITERIA`` below."""

    largely_recommended = "largely_recommended"
    reliability = "reliability"
    importance = "importance"
    engaging = "engaging"
    pedagogy = "pedagogy"
    layman_friendly = "layman_friendly"
    diversity_inclusion = "diversity_inclusion"
    backfire_risk = "backfire_risk"
    better_habits = "better_habits"
    entertaining_relaxing = "entertaining_relaxing"


if tuple(CriterionName) != CRITERION_NAMES:  # same names, same order
    raise RuntimeError("CriterionName differs from CRITERIA")
