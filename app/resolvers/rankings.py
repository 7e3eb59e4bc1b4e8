"""Rankings: weighted global scores, keyset pages, cached per score version.

Score of a video = Σ_c weight_c · score_c over the weighted criteria (display
scale, -100..100). Rule for missing criteria: a criterion the video has no score
on counts as 0, the learner's prior (no evidence either way); a video with no
score on any weighted criterion is left out. Default weights: the main criterion
only, weight 1 (the score is then Tournesol's ``tournesolScore``).

Order: score descending, then video id ascending. The cursor is the last edge's
(score, id): the next page starts strictly after it, so a page never repeats or
skips a video that kept its score, even when others move. ``rank`` is 1 + the
number of videos ahead of that edge in the current order.

The whole page (edges with video metadata) is cached under a key holding the
learner's score version and every argument, so a cached page is never staler
than the last applied comparison.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from app.criteria import CRITERION_INDEX, MAIN_CRITERION
from app.db import validation
from app.db.validation import InvalidInput
from app.resolvers import videos
from app.resolvers.pagination import check_first, decode_cursor, encode_cursor

CURSOR_KIND = "rank"
MAX_WEIGHT = 100.0
DEFAULT_WEIGHTS = ((MAIN_CRITERION, 1.0),)


def check_weights(weights: list[tuple[str, float]] | None) -> tuple[tuple[str, float], ...]:
    if not weights:
        return DEFAULT_WEIGHTS
    seen: dict[str, float] = {}
    for i, (criterion, weight) in enumerate(weights):
        validation.criterion(criterion, f"weights[{i}].criterion")
        if criterion in seen:
            raise InvalidInput(
                f"weights[{i}].criterion", f"{criterion!r} is given twice", "DUPLICATE_CRITERION"
            )
        if not (math.isfinite(weight) and 0.0 <= weight <= MAX_WEIGHT):
            raise InvalidInput(
                f"weights[{i}].weight", f"a weight is between 0 and {MAX_WEIGHT:g}", "OUT_OF_RANGE"
            )
        seen[criterion] = float(weight)
    if not any(seen.values()):
        raise InvalidInput("weights", "at least one weight must be positive", "ALL_ZERO")
    return tuple(sorted((c, w) for c, w in seen.items() if w > 0))


async def rankings(
    ctx: Any,
    weights: list[tuple[str, float]] | None,
    flt: dict[str, Any] | None,
    include_unsafe: bool,
    first: int,
    after: str | None,
) -> dict[str, Any]:
    check_first(first)
    weights_ = check_weights(weights)
    flt = videos.check_filter(flt)
    cursor = None
    if after is not None:
        score, vid = decode_cursor(CURSOR_KIND, after, 2)
        if not isinstance(score, int | float) or not isinstance(vid, int):
            raise InvalidInput("after", "`after` is not a ranking cursor", "BAD_PAGINATION")
        cursor = (float(score), vid)
    learner = ctx.learner
    version = learner.version
    params = {
        "w": weights_, "f": flt, "u": include_unsafe, "first": first, "after": cursor,
    }  # fmt: skip
    key = ctx.cache.key("rankings", version, params)

    async def compute() -> dict[str, Any]:
        return await _compute(learner, weights_, flt, include_unsafe, first, cursor)

    return await ctx.cache.get_or_compute(key, compute)


async def _compute(
    learner: Any,
    weights: tuple[tuple[str, float], ...],
    flt: dict[str, Any],
    include_unsafe: bool,
    first: int,
    cursor: tuple[float, int] | None,
) -> dict[str, Any]:
    table = await learner.ranking_table()
    cols = [CRITERION_INDEX[c] for c, _ in weights]
    w = np.array([w for _, w in weights])
    sub = table.scores[:, cols]
    present = ~np.isnan(sub).all(axis=1)
    keep = present if include_unsafe else present & table.safe()
    if flt:
        allowed = np.asarray(await videos.filtered_ids(flt), np.int64)
        keep &= np.isin(table.video_ids, allowed)
    ids = table.video_ids[keep]
    score = np.round(np.nan_to_num(sub[keep], nan=0.0) @ w, 6)
    order = np.lexsort((ids, -score))
    ids, score = ids[order], score[order]
    total = len(ids)
    start = 0
    if cursor is not None:
        s, vid = cursor
        # first position strictly after (s, vid) in (-score, id) order
        start = int(np.searchsorted(-score, -s, side="left"))
        while start < total and score[start] == s and ids[start] <= vid:
            start += 1
    page_ids = ids[start : start + first].tolist()
    page_scores = score[start : start + first].tolist()
    rows = await videos.by_ids(page_ids)
    edges = []
    for offset, (vid, s) in enumerate(zip(page_ids, page_scores, strict=True)):
        if vid not in rows:  # deleted meanwhile
            continue
        edges.append(
            {
                "cursor": encode_cursor(CURSOR_KIND, s, vid),
                "rank": start + offset + 1,
                "score": s,
                "video": videos.as_dict(rows[vid]),
            }
        )
    return {
        "edges": edges,
        "has_next_page": start + first < total,
        "total_count": total,
        "weights": [list(x) for x in weights],
        "version": table.version,
    }
