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
from typing import Any, cast

import numpy as np
from tortoise.expressions import Q

from app.accounts import preferences
from app.criteria import CRITERION_INDEX, MAIN_CRITERION, SCORE_MAX_CHOICES
from app.db import validation, writes
from app.db.models import Comparison, RateLater, RatingVisibility, Video
from app.db.validation import InvalidInput
from app.resolvers import accounts, connections, videos
from app.resolvers.accounts import apply
from app.resolvers.connections import Page, Window
from app.resolvers.pagination import MAX_ID, Key, decode_cursor, encode_cursor
from app.sources import queue as metadata_queue

MAX_SUGGESTIONS = 20
GLOBAL_POOL = 200  # globally uncertain candidates read per suggestion request


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


def _check_pair(video_a: str, video_b: str) -> None:
    validation.youtube_id(video_a, "videoA")
    validation.youtube_id(video_b, "videoB")
    validation.distinct_videos(video_a, video_b)


async def _pair(video_a: str, video_b: str) -> tuple[Video, Video]:
    _check_pair(video_a, video_b)
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


MAIN_REQUIRED = (
    f"a new comparison must score the main criterion, {MAIN_CRITERION!r} (the others are optional)"
)


def merge_scores(
    stored: ComparisonData | None, given: dict[str, tuple[int, int]], merge: bool
) -> dict[str, tuple[int, int]]:
    """The criteria set to store (oriented as asked).

    New comparison: ``given``, which must score the main criterion (as Tournesol's
    poll requires). Update: ``given`` replaces the stored set (Tournesol's PUT), so
    it must score the main criterion too; with ``merge``, ``given`` is merged into
    the stored scores (criteria not given keep theirs). Either way an update never
    drops the main criterion.
    """
    if stored is not None and merge:
        merged = {c: (s, m) for c, s, m in stored.scores}
        merged.update(given)
        given = merged
    if MAIN_CRITERION not in given:
        message = (
            MAIN_REQUIRED
            if stored is None
            else (
                f"an update replaces every score, so it must score {MAIN_CRITERION!r} too "
                "(or send merge: true to change only the criteria given)"
            )
        )
        raise InvalidInput("scores", message, "MAIN_CRITERION_REQUIRED")
    return given


async def submit(
    ctx: Any,
    video_a: str,
    video_b: str,
    scores: list[tuple[str, int, int]],
    *,
    merge: bool = False,
) -> tuple[ComparisonData, Video, Video]:
    """Create or update the viewer's comparison (see :func:`merge_scores`); the
    learner has applied it on return."""
    viewer = ctx.require_viewer()
    _check_pair(video_a, video_b)
    checked = check_scores(scores)
    if merge or MAIN_CRITERION not in checked:  # else the stored scores do not matter
        known = await videos.by_youtube_ids([video_a, video_b])
        stored = None
        if video_a in known and video_b in known:
            stored = await _load(viewer.id, known[video_a], known[video_b])
        checked = merge_scores(stored, checked, merge)
    # A video not known yet is created, as Tournesol does, only once the whole input
    # is valid; YouTube is asked in the background (a video it does not know is then
    # flagged unavailable and left out of rankings), never on the request path.
    found, created = await videos.ensure([video_a, video_b])
    if created:
        metadata_queue.wake(ctx.request.scope["app"].state)
    a, b = found[video_a], found[video_b]
    comparison, event = await writes.upsert_comparison(viewer.id, a.id, b.id, checked)
    await apply(ctx, event)
    await _rate_later_done(ctx, viewer.id, [a.id, b.id])
    # What was just written, oriented as asked: no need to read it back.
    ordered = sorted(checked.items(), key=lambda item: CRITERION_INDEX[item[0]])
    data = ComparisonData(
        comparison.id, viewer.id, a, b, [(c, s, m) for c, (s, m) in ordered],
        comparison.created_at, comparison.updated_at,
    )  # fmt: skip
    return data, a, b


async def _auto_remove(ctx: Any, user_id: int) -> int:
    """The user's own setting (app/accounts/preferences.py), else the server's."""
    mine = (await preferences.load(user_id)).rate_later_auto_remove
    return ctx.settings.rate_later_auto_remove if mine is None else mine


async def _rate_later_done(ctx: Any, user_id: int, video_ids: list[int]) -> None:
    """Take the videos out of the user's rate-later list once they compared each of
    them ``auto_remove`` times (Tournesol's default: 4; 0: never)."""
    listed = await RateLater.filter(user_id=user_id, video_id__in=video_ids).values_list(
        "video_id", flat=True
    )
    if not listed:  # the usual case: one query
        return
    auto_remove = await _auto_remove(ctx, user_id)
    if auto_remove <= 0:
        return
    for video_id in listed:
        mine = Comparison.filter(Q(video_a_id=video_id) | Q(video_b_id=video_id), user_id=user_id)
        if await mine.count() >= auto_remove:
            await RateLater.filter(user_id=user_id, video_id=video_id).delete()


async def delete(
    ctx: Any, video_a: str | None, video_b: str | None, comparison_pk: int | None
) -> tuple[Video, Video]:
    viewer = ctx.require_viewer()
    if comparison_pk is not None:
        # Someone else's comparison gets the very answer a missing one gets: the
        # error must not tell which ids exist.
        row = await Comparison.get_or_none(id=comparison_pk, user_id=viewer.id).select_related(
            "video_a", "video_b"
        )
        if row is None:
            raise not_found_by_id()
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


def not_found_by_id() -> InvalidInput:
    return InvalidInput("id", "you have no comparison with this id", "UNKNOWN_COMPARISON")


def pk_of(node_id: str) -> int | None:
    """The database id in a comparison's node id, or None if it cannot be one
    (``"²".isdigit()`` is true, but ``int("²")`` fails: ASCII digits only)."""
    if not (node_id.isascii() and node_id.isdigit()) or len(node_id) > 10:
        return None
    pk = int(node_id)
    return pk if pk <= MAX_ID else None


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
        cast(
            list[int],
            await RatingVisibility.filter(user_id=user_id, is_public=False).values_list(
                "video_id", flat=True
            ),
        )
    )


async def visible_by_pks(ctx: Any, pks: list[int]) -> dict[int, ComparisonData]:
    """Comparisons by id that the viewer may see: their own, and others' whose two
    ratings are public (as ``user(username){ comparisons }`` lists them)."""
    if not pks:
        return {}
    rows = await Comparison.filter(id__in=pks).prefetch_related("scores", "video_a", "video_b")
    out: dict[int, ComparisonData] = {}
    private: dict[int, set[int]] = {}
    for r in rows:
        if ctx.viewer is None or r.user_id != ctx.viewer.id:
            if r.user_id not in private:
                private[r.user_id] = await private_videos(r.user_id)
            if {r.video_a_id, r.video_b_id} & private[r.user_id]:
                continue
        out[r.id] = _data(r)
    return out


async def page(user_id: int, win: Window, *, public_only: bool) -> Page:
    query = Comparison.filter(user_id=user_id)
    if public_only and (private := await private_videos(user_id)):
        query = query.exclude(video_a_id__in=private).exclude(video_b_id__in=private)
    found = await connections.by_id(query, win, "comparison", lambda r: r.id)
    rows = [r for _, r in found.rows]
    await Comparison.fetch_for_list(rows, "scores", "video_a", "video_b")
    found.rows = [(cur, _data(r)) for (cur, _), r in zip(found.rows, rows, strict=True)]
    return found


@dataclass
class RatingData:
    video: Video
    is_public: bool
    scores: list  # ContributorScoreView


async def rating(ctx: Any, username: str, youtube_id: str) -> RatingData | None:
    """One user's rating of one video, if the viewer may see it (theirs, or public)."""
    found = await accounts.users_by_name([username])
    video = (await videos.by_youtube_ids([youtube_id])).get(youtube_id)
    if username not in found or video is None:
        return None
    user = found[username]
    own = ctx.viewer is not None and ctx.viewer.id == user.id
    if own:
        rows = (await ctx.my_scores()).get(video.id, [])
    else:
        rows = [r for r in await ctx.learner.contributor_scores(user.id) if r.video_id == video.id]
    private = await private_videos(user.id)
    if not rows or (not own and video.id in private):
        return None
    return RatingData(video, video.id not in private, rows)


async def ratings(ctx: Any, user_id: int, win: Window, *, public_only: bool) -> Page:
    """The user's personal scores, per video they compared, by video id."""
    by_video: dict[int, list] = {}
    if ctx.viewer is not None and ctx.viewer.id == user_id:
        by_video = await ctx.my_scores()
    else:
        for row in await ctx.learner.contributor_scores(user_id):
            by_video.setdefault(row.video_id, []).append(row)
    private = await private_videos(user_id)
    all_ids = sorted(v for v in by_video if not (public_only and v in private))
    start, stop, previous, more = connections.in_memory(
        [(v,) for v in all_ids], win, "rating", (Key.ID,)
    )
    ids = all_ids[start:stop]
    rows = await videos.by_ids(ids)
    return Page(
        [
            (encode_cursor("rating", v), RatingData(rows[v], v not in private, by_video[v]))
            for v in ids
            if v in rows
        ],
        more,
        previous,
        len(all_ids),
    )


async def personal_ranking(ctx: Any, criterion: str, win: Window) -> Page:
    """The viewer's videos by their own live score on ``criterion``, best first
    (then by video id), with keyset cursors on (score, id); videos they have no
    score on for that criterion are left out."""
    viewer = ctx.require_viewer()
    by_video = await ctx.my_scores()
    # keys (-score, id): ascending is best first; a cursor holds (score, id)
    ranked = sorted(
        (-round(r.score, 6), vid)
        for vid, rows in by_video.items()
        for r in rows
        if r.criterion == criterion
    )
    negated = Window(win.size, win.backward, *(_negate_mine(c) for c in (win.after, win.before)))
    start, stop, previous, more = connections.in_memory(
        ranked, negated, "mine", (Key.SCORE, Key.ID)
    )
    page = ranked[start:stop]
    rows = await videos.by_ids([vid for _, vid in page])
    private = await private_videos(viewer.id)
    return Page(
        [
            (
                encode_cursor("mine", -neg, vid),
                RatingData(rows[vid], vid not in private, by_video[vid]),
            )
            for neg, vid in page
            if vid in rows
        ],
        more,
        previous,
        len(ranked),
    )


def _negate_mine(cursor: str | None) -> str | None:
    """A "mine" cursor (score, id) as the sort key (-score, id), re-encoded (checked)."""
    if cursor is None:
        return None
    score, vid = decode_cursor("mine", cursor, (Key.SCORE, Key.ID))
    return encode_cursor("mine", -score, vid)


async def set_visibility(ctx: Any, youtube_id: str, is_public: bool) -> Video:
    viewer = ctx.require_viewer()
    video = await videos.require(youtube_id, "youtubeId")
    rated = Comparison.filter(Q(video_a_id=video.id) | Q(video_b_id=video.id), user_id=viewer.id)
    if not await rated.exists():
        raise InvalidInput(
            "youtubeId", "you have not rated this video: compare it first", "NOT_RATED"
        )
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


async def rate_later_page(user_id: int, win: Window) -> Page:
    found = await connections.by_id(RateLater.filter(user_id=user_id), win, "later", lambda r: r.id)
    rows = [r for _, r in found.rows]
    await RateLater.fetch_for_list(rows, "video")
    found.rows = [(cur, r.video, r.added_at) for (cur, _), r in zip(found.rows, rows, strict=True)]
    return found


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
    later = cast(
        list[int],
        await RateLater.filter(user_id=viewer.id).values_list("video_id", flat=True),
    )
    later_set = set(later)
    for vid in later:
        if vid not in cand:
            view = learner.video_scores(vid).get("largely_recommended")
            cand[vid] = (view.score if view else 0.0, 100.0)  # unrated by me: most uncertain
    # Globally uncertain videos: preselected in NumPy by fewest raters on the main
    # criterion (random among ties), so a request reads a bounded number of views
    # whatever the number of videos (this runs after every submitComparison).
    table = await learner.ranking_table()
    main_col = CRITERION_INDEX[MAIN_CRITERION]
    rated = ~np.isnan(table.scores[:, main_col])
    ids, raters = table.video_ids[rated], table.n_contributors[rated, main_col]
    pool = np.lexsort((np.random.default_rng().random(len(ids)), raters))[:GLOBAL_POOL]
    glob = []
    for vid in ids[pool].tolist():
        if vid not in cand and (view := learner.video_scores(vid).get(MAIN_CRITERION)):
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
                # either side may be the rate-later video: the pair is there because of it
                why = "in your rate-later list" if later_set & {vid, other} else "uncertain score"
                pairs[key] = (cand[vid][1] + cand[other][1], why)
                break
    best = sorted(pairs.items(), key=lambda kv: -kv[1][0])[:first]
    rows = await videos.by_ids(sorted({v for (a, b), _ in best for v in (a, b)}))
    return [(rows[a], rows[b], unc, why) for (a, b), (unc, why) in best if a in rows and b in rows]


async def suggestion(
    ctx: Any, video_a: str, video_b: str
) -> tuple[Video, Video, float, str] | None:
    """The pair (video_a, video_b) as a suggestion for the viewer, now (what
    :func:`suggestions` would say of it), or None if it is not one: signed out,
    unknown videos, the same video twice, or already compared."""
    if ctx.viewer is None or video_a == video_b:
        return None
    found = await videos.by_youtube_ids([video_a, video_b])
    if video_a not in found or video_b not in found:
        return None
    a, b = found[video_a], found[video_b]
    if await _load(ctx.viewer.id, a, b) is not None:
        return None
    mine = await ctx.my_scores()
    later = set(
        await RateLater.filter(user_id=ctx.viewer.id, video_id__in=[a.id, b.id]).values_list(
            "video_id", flat=True
        )
    )

    def uncertainty(vid: int) -> float:
        if vid in later and vid not in mine:
            return 100.0  # unrated by me: most uncertain
        rows = mine.get(vid)
        if rows:
            main = next((r for r in rows if r.criterion == MAIN_CRITERION), rows[0])
            return float(main.uncertainty)
        view = ctx.learner.video_scores(vid).get(MAIN_CRITERION)
        return float(view.uncertainty) if view else 100.0

    why = "in your rate-later list" if later else "uncertain score"
    return a, b, uncertainty(a.id) + uncertainty(b.id), why
