"""Comparisons, ratings, rate-later and suggestions of one contributor.

A comparison is stored once per unordered pair with ``video_a_id < video_b_id``;
asked for the other way round, it is returned with its videos swapped and its
scores negated (negative prefers ``videoA``).

Privacy: a user's rating of a video is public unless they made it private
(``RatingVisibility``). Other people see a user's public ratings only, and their
comparisons only when both ratings are public (as in the public dataset).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.criteria import CRITERION_INDEX, SCORE_MAX_CHOICES
from app.db import validation, writes
from app.db.models import Comparison, RateLater, RatingVisibility, Video
from app.db.validation import InvalidInput
from app.resolvers import videos
from app.resolvers.accounts import apply
from app.resolvers.errors import forbidden
from app.resolvers.pagination import check_first, decode_cursor, encode_cursor

MAX_SUGGESTIONS = 20


@dataclass
class ComparisonData:
    pk: int
    user_id: int
    video_a: Video
    video_b: Video
    scores: list[tuple[str, int, int]]  # (criterion, score, score_max), oriented a → b
    created_at: datetime
    updated_at: datetime


def _data(comparison: Comparison, flip: bool = False) -> ComparisonData:
    scores = sorted(
        ((s.criterion, -s.score if flip else s.score, s.score_max) for s in comparison.scores),
        key=lambda x: CRITERION_INDEX[x[0]],
    )
    a, b = comparison.video_a, comparison.video_b
    return ComparisonData(
        comparison.id, comparison.user_id, b if flip else a, a if flip else b, scores,
        comparison.created_at, comparison.updated_at,
    )  # fmt: skip


def check_scores(scores: list[tuple[str, int, int]]) -> dict[str, tuple[int, int]]:
    if not scores:
        raise InvalidInput("scores", "give a score on at least one criterion", "NO_SCORES")
    out: dict[str, tuple[int, int]] = {}
    for i, (criterion, score, score_max) in enumerate(scores):
        validation.criterion(criterion, f"scores[{i}].criterion")
        if criterion in out:
            raise InvalidInput(
                f"scores[{i}].criterion", f"{criterion!r} is given twice", "DUPLICATE_CRITERION"
            )
        if score_max not in SCORE_MAX_CHOICES:
            raise InvalidInput(
                f"scores[{i}].scoreMax",
                f"scoreMax is one of {', '.join(map(str, SCORE_MAX_CHOICES))}, got {score_max}",
                "BAD_SCORE_MAX",
            )
        out[criterion] = validation.score(score, score_max, f"scores[{i}].score")
    return out


async def _pair(video_a: str, video_b: str) -> tuple[Video, Video]:
    validation.youtube_id(video_a, "videoA")
    validation.youtube_id(video_b, "videoB")
    validation.distinct_videos(video_a, video_b)
    found = await videos.by_youtube_ids([video_a, video_b])
    for field, yt in (("videoA", video_a), ("videoB", video_b)):
        if yt not in found:
            raise InvalidInput(
                field, f"unknown video {yt!r}: add it with addVideo first", "UNKNOWN_VIDEO"
            )
    return found[video_a], found[video_b]


async def _load(user_id: int, a: Video, b: Video) -> ComparisonData | None:
    lo, hi = sorted((a.id, b.id))
    row = await Comparison.get_or_none(
        user_id=user_id, video_a_id=lo, video_b_id=hi
    ).prefetch_related("scores")
    if row is None:
        return None
    row.video_a, row.video_b = (a, b) if a.id == lo else (b, a)
    return _data(row, flip=a.id != lo)


async def submit(
    ctx: Any, video_a: str, video_b: str, scores: list[tuple[str, int, int]]
) -> tuple[ComparisonData, Video, Video]:
    """Create or update the viewer's comparison; the learner has applied it on return."""
    viewer = ctx.require_viewer()
    a, b = await _pair(video_a, video_b)
    checked = check_scores(scores)
    comparison, event = await writes.upsert_comparison(viewer.id, a.id, b.id, checked)
    await apply(ctx, event)
    # What was just written, oriented as asked: no need to read it back.
    ordered = sorted(checked.items(), key=lambda item: CRITERION_INDEX[item[0]])
    data = ComparisonData(
        comparison.id, viewer.id, a, b, [(c, s, m) for c, (s, m) in ordered],
        comparison.created_at, comparison.updated_at,
    )  # fmt: skip
    return data, a, b


async def delete(
    ctx: Any, video_a: str | None, video_b: str | None, comparison_pk: int | None
) -> tuple[Video, Video]:
    viewer = ctx.require_viewer()
    if comparison_pk is not None:
        row = await Comparison.get_or_none(id=comparison_pk).select_related("video_a", "video_b")
        if row is None:
            raise InvalidInput("id", "no such comparison", "UNKNOWN_COMPARISON")
        if row.user_id != viewer.id:
            raise forbidden("id", "only its author can delete a comparison")
        a, b = row.video_a, row.video_b
    else:
        if video_a is None or video_b is None:
            raise InvalidInput("videoA", "give `id`, or both `videoA` and `videoB`", "MISSING")
        a, b = await _pair(video_a, video_b)
    event = await writes.delete_comparison(viewer.id, a.id, b.id)
    if event is None:
        raise InvalidInput(
            "videoB", "you have no comparison of these two videos", "UNKNOWN_COMPARISON"
        )
    await apply(ctx, event)
    return a, b


async def get(ctx: Any, video_a: str, video_b: str) -> ComparisonData | None:
    viewer = ctx.require_viewer()
    a, b = await _pair(video_a, video_b)
    return await _load(viewer.id, a, b)


async def by_pks(ctx: Any, pks: list[int]) -> dict[int, ComparisonData]:
    """Comparisons by id, only the viewer's own (others resolve to nothing)."""
    if ctx.viewer is None or not pks:
        return {}
    rows = await Comparison.filter(id__in=pks, user_id=ctx.viewer.id).prefetch_related(
        "scores", "video_a", "video_b"
    )
    return {r.id: _data(r) for r in rows}


async def private_videos(user_id: int) -> set[int]:
    return set(
        await RatingVisibility.filter(user_id=user_id, is_public=False).values_list(
            "video_id", flat=True
        )
    )


async def page(
    user_id: int, first: int, after: str | None, *, public_only: bool
) -> tuple[list[tuple[str, ComparisonData]], bool]:
    check_first(first)
    query = Comparison.filter(user_id=user_id).order_by("id")
    if public_only and (private := await private_videos(user_id)):
        query = query.exclude(video_a_id__in=private).exclude(video_b_id__in=private)
    if after is not None:
        (last,) = decode_cursor("comparison", after, 1)
        query = query.filter(id__gt=int(last))
    rows = await query.limit(first + 1).prefetch_related("scores", "video_a", "video_b")
    return [(encode_cursor("comparison", r.id), _data(r)) for r in rows[:first]], len(rows) > first


@dataclass
class RatingData:
    video: Video
    is_public: bool
    scores: list  # ContributorScoreView


async def ratings(
    ctx: Any, user_id: int, first: int, after: str | None, *, public_only: bool
) -> tuple[list[tuple[str, RatingData]], bool]:
    """The user's personal scores, per video they compared, by video id."""
    check_first(first)
    by_video: dict[int, list] = {}
    if ctx.viewer is not None and ctx.viewer.id == user_id:
        by_video = await ctx.my_scores()
    else:
        for row in await ctx.learner.contributor_scores(user_id):
            by_video.setdefault(row.video_id, []).append(row)
    private = await private_videos(user_id)
    ids = sorted(v for v in by_video if not (public_only and v in private))
    if after is not None:
        (last,) = decode_cursor("rating", after, 1)
        ids = [v for v in ids if v > int(last)]
    more = len(ids) > first
    ids = ids[:first]
    rows = await videos.by_ids(ids)
    return [
        (encode_cursor("rating", v), RatingData(rows[v], v not in private, by_video[v]))
        for v in ids
        if v in rows
    ], more


async def set_visibility(ctx: Any, youtube_id: str, is_public: bool) -> Video:
    viewer = ctx.require_viewer()
    video = await videos.require(youtube_id, "youtubeId")
    await apply(ctx, await writes.set_visibility(viewer.id, video.id, is_public))
    return video


async def rate_later(ctx: Any, youtube_id: str, add: bool) -> Video:
    viewer = ctx.require_viewer()
    video = await videos.require(youtube_id, "youtubeId")
    if add:
        await RateLater.get_or_create(user_id=viewer.id, video_id=video.id)
    else:
        await RateLater.filter(user_id=viewer.id, video_id=video.id).delete()
    return video


async def rate_later_page(
    user_id: int, first: int, after: str | None
) -> tuple[list[tuple[str, Video, datetime]], bool]:
    check_first(first)
    query = RateLater.filter(user_id=user_id).order_by("id")
    if after is not None:
        (last,) = decode_cursor("later", after, 1)
        query = query.filter(id__gt=int(last))
    rows = await query.limit(first + 1).prefetch_related("video")
    out = [(encode_cursor("later", r.id), r.video, r.added_at) for r in rows[:first]]
    return out, len(rows) > first


async def suggestions(ctx: Any, first: int) -> list[tuple[Video, Video, float, str]]:
    """Pairs worth comparing next, from the learner's uncertainty.

    Candidates: the viewer's rate-later videos (never compared yet: most to
    learn), the videos they compared (weighted by their personal uncertainty on
    the main criterion), then the globally most uncertain videos. Each candidate
    is paired with the nearest-scored candidate the viewer has not compared it
    with yet; pairs are ranked by the sum of the two uncertainties.
    """
    viewer = ctx.require_viewer()
    if not 1 <= first <= MAX_SUGGESTIONS:
        raise InvalidInput("first", f"`first` must be between 1 and {MAX_SUGGESTIONS}", "BAD_FIRST")
    learner = ctx.learner
    mine = await ctx.my_scores()
    # video id → (score, uncertainty) on the display scale
    cand: dict[int, tuple[float, float]] = {}
    for vid, rows in mine.items():
        main = next((r for r in rows if r.criterion == "largely_recommended"), rows[0])
        cand[vid] = (main.score, main.uncertainty)
    later = await RateLater.filter(user_id=viewer.id).values_list("video_id", flat=True)
    for vid in later:
        if vid not in cand:
            view = learner.video_scores(vid).get("largely_recommended")
            cand[vid] = (view.score if view else 0.0, 100.0)  # unrated by me: most uncertain
    table = await learner.ranking_table()
    glob = []
    for vid in table.video_ids.tolist():
        if vid not in cand and (view := learner.video_scores(vid).get("largely_recommended")):
            glob.append((view.uncertainty, vid, view.score))
    glob.sort(reverse=True)
    for unc, vid, score in glob[: max(2 * first, 10)]:
        cand[vid] = (score, unc)
    if len(cand) < 2:
        return []
    done = {
        (a, b)
        for a, b in await Comparison.filter(user_id=viewer.id).values_list(
            "video_a_id", "video_b_id"
        )
    }
    by_score = sorted(cand, key=lambda v: cand[v][0])
    pos = {v: i for i, v in enumerate(by_score)}
    pairs: dict[tuple[int, int], tuple[float, str]] = {}
    for vid in sorted(cand, key=lambda v: -cand[v][1])[: 4 * first]:
        i = pos[vid]
        # walk outwards from its own score for the nearest uncompared partner
        for step in range(1, len(by_score)):
            found = None
            for j in (i - step, i + step):
                if 0 <= j < len(by_score):
                    other = by_score[j]
                    key = (min(vid, other), max(vid, other))
                    if key not in done and key not in pairs:
                        found = (key, other)
                        break
            if found:
                key, other = found
                why = "in your rate-later list" if vid in later else "uncertain score"
                pairs[key] = (cand[vid][1] + cand[other][1], why)
                break
    best = sorted(pairs.items(), key=lambda kv: -kv[1][0])[:first]
    rows = await videos.by_ids(sorted({v for (a, b), _ in best for v in (a, b)}))
    return [(rows[a], rows[b], unc, why) for (a, b), (unc, why) in best if a in rows and b in rows]
