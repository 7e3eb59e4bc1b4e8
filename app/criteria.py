"""The criteria of the "videos" poll, as Tournesol names them (DESIGN.md §2).

The order is part of the on-disk format: the learner indexes criteria by their
position here, and its checkpoints store that index. Append new criteria at the end.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    label: str
    main: bool = False


CRITERIA: tuple[Criterion, ...] = (
    Criterion("largely_recommended", "Should be largely recommended", main=True),
    Criterion("reliability", "Reliable and not misleading"),
    Criterion("importance", "Important and actionable"),
    Criterion("engaging", "Engaging and thought-provoking"),
    Criterion("pedagogy", "Clear and pedagogical"),
    Criterion("layman_friendly", "Layman-friendly"),
    Criterion("diversity_inclusion", "Diversity and inclusion"),
    Criterion("backfire_risk", "Resilience to backfiring risks"),
    Criterion("better_habits", "Encourages better habits"),
    Criterion("entertaining_relaxing", "Entertaining and relaxing"),
)

CRITERION_NAMES: tuple[str, ...] = tuple(c.name for c in CRITERIA)
CRITERION_INDEX: dict[str, int] = {c.name: i for i, c in enumerate(CRITERIA)}
MAIN_CRITERION: str = next(c.name for c in CRITERIA if c.main)
SCORE_MAX_CHOICES: tuple[int, ...] = (2, 10)
