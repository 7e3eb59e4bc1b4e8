"""Rankings: weighted global scores, keyset pages, cached per score version.

Score of a video = Σ_c weight_c · score_c over the weighted criteria (display
scale, -100..100). Rule for missing criteria: a criterion the video has no score
on counts as 0, the learner's prior (no evidence either way); a video with no
score on any weighted criterion is left out. Default weights: the main criterion
only, weight 1 (the score is then Tournesol's ``tournesolScore``).

Unsafe videos (app/resolvers/moderation.py: main score ≤ 20, raters' trust < 1.5,
deleted or private at YouTube, moderated by an admin) are left out unless
``includeUnsafe``. ``excludeCompared`` leaves out the videos the viewer compared;
that page is cached under a key holding the viewer's id.

Order: score descending, then video id ascending. A ranking is pinned: the first
page computes a *snapshot* (the ordered ids and scores of one score version, after
safety and filters) and every cursor names it, so paging to the end (forward with
first/after, backward with last/before) sees each video exactly once even while
comparisons land. A snapshot's id is a digest of what it holds, so a request that
computes the same ranking again finds the same id. Snapshots are stored in the
shared cache (app/cache.py: Redis when several processes serve behind a load
balancer) for ``SUNRANK_RANKING_SNAPSHOT_TTL_SECONDS``, compactly (see
:func:`_encode`), so any process honours any cursor; the last ``MAX_SNAPSHOTS`` are
also kept in process memory (first level, same lifetime). A
cursor whose snapshot expired, or was evicted (memory cache, or one over
``MAX_SHARED_BYTES``), is a ``STALE_CURSOR`` error (start again from the first
page), unless the ranking computed now is the same. ``rank`` is the position in the
snapshot.

Sorting is done once per (score version, weights): the pre-sorted order is reused
by every later request of that version, which then only masks and slices. The
page's video rows and the set of hidden videos come from the process's
:class:`~app.resolvers.catalog.VideoCatalog`, not from a query per request.

The whole page (edges with video metadata) is cached under a key holding the
learner's score version and every argument, so a cached page is never staler
than the last applied comparison.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import math
import time
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from app.criteria import CRITERION_INDEX, MAIN_CRITERION
from app.db import validation
from app.db.models import Comparison
from app.db.validation import InvalidInput
from app.resolvers import videos
from app.resolvers.catalog import VideoCatalog
from app.resolvers.pagination import (
    Key,
    PaginationError,
    check_window,
    decode_cursor,
    encode_cursor,
    window,
)

log = logging.getLogger("sunrank.rankings")
CURSOR_KIND = "rank"
MAX_WEIGHT = 100.0
DEFAULT_WEIGHTS = ((MAIN_CRITERION, 1.0),)
# Pinned rankings kept for their cursors: 16 bytes per video each.
MAX_SNAPSHOTS = 256
# A snapshot whose encoding is larger stays in its process only (~1.2M videos at
# ~6.8 B each, bench/ranking_snapshot.py): bounds what one ranking costs the cache.
MAX_SHARED_BYTES = 8 * 2**20
SHARED_KEY = "ranking-snapshot:{}"
OFF_LOOP_VIDEOS = 50_000  # larger snapshots are encoded and decoded in a thread
T = TypeVar("T")
# Pre-sorted orders, per (score version, weights): the current version's matter.
MAX_ORDERS = 16


@dataclass
class Snapshot:
    params: str  # what was ranked (weights, filter, safety, viewer): JSON
    version: int
    ids: np.ndarray  # best first
    scores: np.ndarray
    expires: float = math.inf  # time.monotonic() after which the cursors are stale


_snapshots: OrderedDict[int, Snapshot] = OrderedDict()
_orders: OrderedDict[tuple[int, tuple[tuple[str, float], ...]], tuple[Any, ...]] = OrderedDict()
# (id of a _sorted ids array, params, packed mask) -> (that array, weakly; snapshot id)
_digests: OrderedDict[tuple[int, str, bytes], tuple[weakref.ref[np.ndarray], int]] = OrderedDict()
MAX_DIGESTS = 256


def stale_cursor(field: str) -> InvalidInput:
    return InvalidInput(
        field,
        "this ranking cursor is too old (its ranking is no longer kept): start again "
        "from the first page",
        "STALE_CURSOR",
    )


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
    first: int | None,
    after: str | None,
    exclude_compared: bool = False,
    last: int | None = None,
    before: str | None = None,
) -> dict[str, Any]:
    size, backward = check_window(first, last)
    weights_ = check_weights(weights)
    flt = videos.check_filter(flt)
    cursors: dict[str, tuple[int, float, int]] = {}
    for arg, value in (("after", after), ("before", before)):
        if value is not None:
            snap, score, vid = decode_cursor(CURSOR_KIND, value, (Key.ID, Key.SCORE, Key.ID), arg)
            cursors[arg] = (int(snap), float(score), int(vid))
    snaps = {c[0] for c in cursors.values()}
    if len(snaps) > 1:
        raise PaginationError("`after` and `before` come from different rankings")
    learner = ctx.learner
    params = {
        "w": weights_, "f": flt, "u": include_unsafe, "n": size, "back": backward,
        "after": cursors.get("after"), "before": cursors.get("before"),
    }  # fmt: skip
    user_id = None
    if exclude_compared:
        # per user: the viewer's id is part of the key, never a shared entry
        user_id = params["excluding_compared_by"] = ctx.require_viewer("excludeCompared").id

    async def compute() -> dict[str, Any]:
        snapshot_id, snapshot = await _snapshot(
            learner, ctx.catalog, weights_, flt, include_unsafe, user_id,
            next(iter(snaps), None), next(iter(cursors), "after"), ctx.cache,
            ctx.settings.ranking_snapshot_ttl_seconds,
        )  # fmt: skip
        return await _page(snapshot_id, snapshot, ctx.catalog, weights_, size, backward, cursors)

    return await ctx.cache.get_or_compute("rankings", learner.watermark, params, compute)


async def compared_ids(user_id: int) -> set[int]:
    """Videos the user compared (with any other)."""
    pairs = await Comparison.filter(user_id=user_id).values_list("video_a_id", "video_b_id")
    return {v for pair in pairs for v in pair}


async def recommendable_mask(
    table: Any,
    catalog: VideoCatalog,
    flt: dict[str, Any],
    include_unsafe: bool,
    exclude: set[int] | None = None,
) -> np.ndarray:
    """Which rows of ``table`` pass the filter, safety (score, trust, availability,
    moderation) unless ``include_unsafe``, and are not in ``exclude``."""
    keep = np.ones(len(table.video_ids), bool)
    if not include_unsafe:
        keep &= table.safe()
        keep &= ~np.isin(table.video_ids, await catalog.hidden_ids())
    if flt:
        allowed = np.asarray(await videos.filtered_ids(flt), np.int64)
        keep &= np.isin(table.video_ids, allowed)
    if exclude:
        keep &= ~np.isin(table.video_ids, np.fromiter(exclude, np.int64, len(exclude)))
    return keep


MAX_RANDOM = 50


async def random_recommendations(
    ctx: Any, first: int, flt: dict[str, Any] | None, exclude_compared: bool
) -> list[Any]:
    """``first`` videos drawn uniformly, without replacement, among the safe ones
    matching ``flt`` (what Tournesol's browser extension shows). Never cached: the
    point is a new draw each time."""
    if not 1 <= first <= MAX_RANDOM:
        raise InvalidInput("first", f"`first` must be between 1 and {MAX_RANDOM}", "BAD_FIRST")
    flt = videos.check_filter(flt)
    exclude = None
    if exclude_compared:
        exclude = await compared_ids(ctx.require_viewer("excludeCompared").id)
    table = await ctx.learner.ranking_table()
    main = table.scores[:, CRITERION_INDEX[MAIN_CRITERION]]
    keep = ~np.isnan(main) & await recommendable_mask(table, ctx.catalog, flt, False, exclude)
    pool = table.video_ids[keep]
    picked = np.random.default_rng().choice(pool, size=min(first, len(pool)), replace=False)
    rows = await videos.by_ids(picked.tolist())
    return [rows[v] for v in picked.tolist() if v in rows]


def _sorted(table: Any, weights: tuple[tuple[str, float], ...]) -> tuple[Any, ...]:
    """Every scored video of ``table`` by weighted score, best first, then id: (ids,
    scores, table row of each). Sorted once per (version, weights)."""
    # by the table itself (kept in the value, so its id is not reused): versions of
    # two learners in one process (tests) may coincide
    key = (id(table), weights)
    found = _orders.get(key)
    if found is not None:
        _orders.move_to_end(key)
        return found[1:]
    cols = [CRITERION_INDEX[c] for c, _ in weights]
    w = np.array([w for _, w in weights])
    sub = table.scores[:, cols]
    rows = np.flatnonzero(~np.isnan(sub).all(axis=1))
    score = np.round(np.nan_to_num(sub[rows], nan=0.0) @ w, 6)
    order = np.lexsort((table.video_ids[rows], -score))
    found = (table.video_ids[rows][order], score[order], rows[order], table.version)
    _orders[key] = (table, *found)
    while len(_orders) > MAX_ORDERS:
        _orders.popitem(last=False)
    return found


def _snapshot_id(params: str, ids: np.ndarray, kept: bytes, snap: Snapshot) -> int:
    """The digest of what ``snap`` holds. ``snap`` is (``ids`` and its scores, both
    from :func:`_sorted`) masked by ``kept`` (packed; empty: no mask), so the digest
    is remembered under (that array, params, mask): hashing every id and score took
    ~7 % of a cold rankings request."""
    key = (id(ids), params, kept)
    found = _digests.get(key)
    if found is not None and found[0]() is ids:  # not a later array at the same address
        _digests.move_to_end(key)
        return found[1]
    digest = hashlib.blake2b(digest_size=4)
    digest.update(params.encode())
    digest.update(snap.ids.tobytes())
    digest.update(snap.scores.tobytes())
    snapshot_id = int.from_bytes(digest.digest()) & 0x7FFFFFFF
    _digests[key] = (weakref.ref(ids), snapshot_id)  # weak: old orders are not kept alive
    while len(_digests) > MAX_DIGESTS:
        _digests.popitem(last=False)
    return snapshot_id


async def _snapshot(
    learner: Any,
    catalog: VideoCatalog,
    weights: tuple[tuple[str, float], ...],
    flt: dict[str, Any],
    include_unsafe: bool,
    excluding_compared_by: int | None,
    wanted: int | None,
    wanted_field: str = "after",
    cache: Any = None,
    ttl: float = 900.0,
) -> tuple[int, Snapshot]:
    """The ranking now, or the pinned one ``wanted`` (a snapshot id from a cursor):
    from this process's memory, else from the shared cache, else computed again
    (honoured only if it is still the same)."""
    table = await learner.ranking_table()
    params = json.dumps(
        [weights, flt, include_unsafe, excluding_compared_by], sort_keys=True, default=str
    )
    if wanted is not None:
        pinned = _local(wanted)
        if pinned is None and cache is not None:
            pinned = await _off_loop(_decode, await cache.get(SHARED_KEY.format(wanted)), ttl)
            if pinned is not None:
                _remember(wanted, pinned)
        if pinned is not None:
            if pinned.params != params:
                raise PaginationError("this cursor belongs to a ranking with other arguments")
            return wanted, pinned
    ids, scores, rows, version = _sorted(table, weights)
    exclude = None
    if excluding_compared_by is not None:
        exclude = await compared_ids(excluding_compared_by)
    if include_unsafe and not flt and not exclude:
        snap = Snapshot(params, int(version), ids, scores)
        kept = b""
    else:
        keep = (await recommendable_mask(table, catalog, flt, include_unsafe, exclude))[rows]
        snap = Snapshot(params, int(version), ids[keep], scores[keep])
        kept = np.packbits(keep).tobytes()
    snapshot_id = _snapshot_id(params, ids, kept, snap)
    if wanted is not None and wanted != snapshot_id:
        raise stale_cursor(wanted_field)
    now = time.monotonic()
    known = _local(snapshot_id)
    if known is not None and known.expires - now > ttl / 2:
        return snapshot_id, known
    # New, or computed again in the second half of its life: (re)stored with a fresh
    # lifetime, here and in the shared cache, so that its cursors live on.
    snap.expires = now + ttl
    _remember(snapshot_id, snap)
    if cache is not None:
        encoded = await _off_loop(_encode, snap)
        if len(encoded) <= MAX_SHARED_BYTES:
            await cache.set(SHARED_KEY.format(snapshot_id), encoded, ttl)
        else:
            log.warning(
                "ranking of %d videos (%d bytes encoded) kept in this process only: its "
                "cursors are STALE_CURSOR on other processes", len(snap.ids), len(encoded),
            )  # fmt: skip
    return snapshot_id, snap


async def _off_loop(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, in a thread when the work is large (500k videos: ~100 ms to
    encode): zlib and numpy release the GIL, the event loop keeps serving."""
    first = args[0]
    if isinstance(first, Snapshot):
        size = len(first.ids)
    else:  # an encoded one: ~9 characters per video
        size = len(first) // 9 if isinstance(first, str) else 0
    if size < OFF_LOOP_VIDEOS:
        return fn(*args)
    return await asyncio.to_thread(fn, *args)


def _local(snapshot_id: int) -> Snapshot | None:
    """The in-process copy of a snapshot, unless expired."""
    snap = _snapshots.get(snapshot_id)
    if snap is None:
        return None
    if snap.expires <= time.monotonic():
        del _snapshots[snapshot_id]
        return None
    _snapshots.move_to_end(snapshot_id)
    return snap


def _remember(snapshot_id: int, snap: Snapshot) -> None:
    _snapshots[snapshot_id] = snap
    _snapshots.move_to_end(snapshot_id)
    while len(_snapshots) > MAX_SNAPSHOTS:
        _snapshots.popitem(last=False)


def _encode(snap: Snapshot) -> str:
    """One string for the cache's JSON serializer:
    ``version|ids dtype|score kind|expiry|base64(zlib(ids, then scores))|params``,
    the expiry in Unix time, so that every process drops it at the same moment.

    Ids are little-endian int32 when they fit, else int64. Scores are exact on the way
    back (cursors hold them and are compared against them, see :func:`_position`):
    rounded to 6 decimals (as :func:`_sorted` makes them) they are stored as the
    differences of consecutive micro-units (int64, small: they compress well), kind
    ``q``; any other value as raw float64, kind ``f``."""
    ids = snap.ids
    small = ids.size == 0 or (int(ids.min()) >= 0 and int(ids.max()) < 2**31)
    id_dtype = "<i4" if small else "<i8"
    scores = snap.scores.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        micro = np.rint(scores * 1e6)
        exact = bool(
            np.isfinite(micro).all()
            and (np.abs(micro) < 2**53).all()
            and np.array_equal(micro / 1e6, scores)
        )
    if exact:
        kind, body = "q", np.diff(micro.astype(np.int64), prepend=0).astype("<i8").tobytes()
    else:
        kind, body = "f", scores.astype("<f8").tobytes()
    blob = zlib.compress(ids.astype(id_dtype).tobytes() + body, 1)
    encoded = base64.b64encode(blob).decode("ascii")
    expiry = time.time() + min(snap.expires - time.monotonic(), 10 * 365 * 86400)
    return f"{snap.version}|{id_dtype}|{kind}|{expiry:.3f}|{encoded}|{snap.params}"


def _decode(value: Any, ttl: float) -> Snapshot | None:
    """A snapshot read back from the cache (None when absent, unreadable or expired:
    stale). It lives here until its expiry (at most ``ttl`` more)."""
    if not isinstance(value, str):
        return None
    try:
        version, id_dtype, kind, expiry, blob, params = value.split("|", 5)
        if id_dtype not in ("<i4", "<i8") or kind not in ("q", "f"):
            raise ValueError(f"unknown encoding {id_dtype!r}, {kind!r}")
        left = min(float(expiry) - time.time(), ttl)
        if not left > 0:  # expired (or NaN)
            return None
        raw = zlib.decompress(base64.b64decode(blob, validate=True))
        width = int(id_dtype[-1])
        n = len(raw) // (width + 8)
        if len(raw) != n * (width + 8):
            raise ValueError("truncated snapshot")
        ids = np.frombuffer(raw, id_dtype, n).astype(np.int64)
        if kind == "q":
            scores = np.cumsum(np.frombuffer(raw, "<i8", n, width * n)) / 1e6
        else:
            scores = np.frombuffer(raw, "<f8", n, width * n).astype(np.float64)
        return Snapshot(params, int(version), ids, scores, time.monotonic() + left)
    except (ValueError, zlib.error) as exc:
        log.warning("unreadable ranking snapshot in the cache (%s): treated as expired", exc)
        return None


def _position(snap: Snapshot, score: float, vid: int) -> int:
    """Index of the first entry strictly after (score, vid) in (-score, id) order."""
    start = int(np.searchsorted(-snap.scores, -score, side="left"))
    end = int(np.searchsorted(-snap.scores, -score, side="right"))
    return start + int(np.searchsorted(snap.ids[start:end], vid, side="right"))


async def _page(
    snapshot_id: int,
    snap: Snapshot,
    catalog: VideoCatalog,
    weights: tuple[tuple[str, float], ...],
    size: int,
    backward: bool,
    cursors: dict[str, tuple[int, float, int]],
) -> dict[str, Any]:
    total = len(snap.ids)
    lo, hi = 0, total
    if "after" in cursors:
        lo = _position(snap, *cursors["after"][1:])
    if "before" in cursors:
        _, s, vid = cursors["before"]
        hi = _position(snap, s, vid) - 1  # the `before` edge itself is left out
    start, stop, has_previous, has_next = window(total, lo, hi, size, backward)
    page_ids = snap.ids[start:stop].tolist()
    page_scores = snap.scores[start:stop].tolist()
    rows = await catalog.rows(page_ids)
    edges = [
        {
            "cursor": encode_cursor(CURSOR_KIND, snapshot_id, s, vid),
            "rank": start + offset + 1,
            "score": s,
            "video": rows[vid],
        }
        for offset, (vid, s) in enumerate(zip(page_ids, page_scores, strict=True))
        if vid in rows  # deleted meanwhile
    ]
    return {
        "edges": edges,
        "has_next_page": has_next,
        "has_previous_page": has_previous,
        "total_count": total,
        "weights": [list(x) for x in weights],
        "version": snap.version,
    }
