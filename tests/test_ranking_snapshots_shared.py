"""Pinned rankings shared across processes (app/resolvers/rankings.py).

- Two real ``sunrank serve`` processes on one PostgreSQL database and one Redis, as
  behind a load balancer: page 1 on A, then scores move, then page 2 on B with A's
  cursor continues A's ranking (no error, no repeat, nothing skipped), and so does
  paging backwards on B.
- The encoding round-trips exactly; an unreadable or expired snapshot is stale.

No timing is asserted.
"""

from __future__ import annotations

import asyncio
import math
import signal
import time
import uuid
from dataclasses import dataclass

import numpy as np
import pytest

from app.cache import Cache
from app.criteria import CRITERION_INDEX, MAIN_CRITERION
from app.db.validation import InvalidInput
from app.resolvers import rankings
from app.resolvers.catalog import VideoCatalog
from app.resolvers.pagination import Key, decode_cursor
from bench._replicas import SUBMIT
from tests.conftest import REDIS_HOST, REDIS_PORT, require_service
from tests.test_crash import _prepare
from tests.test_ops import _start_server
from tests.test_replicas_shared import _data, _post, _token

PAGE = (
    "query($first: Int, $after: String, $last: Int, $before: String) {"
    " rankings(includeUnsafe: true, first: $first, after: $after, last: $last,"
    " before: $before) { totalCount scoreVersion edges { cursor rank score"
    " node { youtubeId } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"
)
WAIT_S = 120  # generous bound for B to apply A's write (not a timing assertion)


def _ranking(base: str, **variables: object) -> dict:
    return _data(_post(base, PAGE, variables))["rankings"]


def _ids(ranking: dict) -> list[str]:
    return [e["node"]["youtubeId"] for e in ranking["edges"]]


def _snapshot_of(cursor: str) -> int:
    return int(decode_cursor("rank", cursor, (Key.ID, Key.SCORE, Key.ID))[0])


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_a_cursor_from_one_process_pages_on_another(postgres_url, env_for, tmp_path):
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    youtube_ids = asyncio.run(_prepare(postgres_url))
    env = {
        **env_for,
        "SUNRANK_DATABASE_URL": postgres_url,
        "SUNRANK_CACHE_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
        "SUNRANK_CACHE_NAMESPACE": f"t-{uuid.uuid4().hex}",  # this test's keys only
        "SUNRANK_RATE_LIMIT_PER_MINUTE": "100000",
        "SUNRANK_RATE_LIMIT_PER_IP_PER_MINUTE": "100000",
        "SUNRANK_REGISTRATIONS_PER_IP_PER_HOUR": "100000",
    }
    servers = []
    try:
        for name in ("a", "b"):
            servers.append(_start_server({**env, "SUNRANK_DATA_DIR": str(tmp_path / name)}))
        (_, base_a), (_, base_b) = servers

        # A's top 100 and its first page: one snapshot.
        whole = _ranking(base_a, first=100)
        assert len(whole["edges"]) == min(100, whole["totalCount"]) and whole["totalCount"] > 6
        page1 = _ranking(base_a, first=5)
        assert _ids(page1) == _ids(whole)[:5]
        pinned = _snapshot_of(page1["pageInfo"]["endCursor"])
        assert pinned == _snapshot_of(whole["edges"][0]["cursor"])

        # Scores move (a comparison written on A) and B applies it: the ranking B
        # computes now is another snapshot, so B can only honour A's cursor through
        # the shared cache.
        token = _token(base_a, "pager")
        scores = [{"criterion": "largely_recommended", "score": 10}]
        pair = {"videoA": _ids(whole)[-1], "videoB": _ids(whole)[0], "scores": scores}
        assert pair["videoA"] in youtube_ids
        submitted = _post(base_a, SUBMIT, {"i": pair}, authorization=f"Bearer {token}")
        assert not _data(submitted)["submitComparison"]["userErrors"]
        started = time.monotonic()
        while True:
            now_b = _ranking(base_b, first=100)
            if now_b["scoreVersion"] != whole["scoreVersion"]:
                break
            assert time.monotonic() - started < WAIT_S, "B never applied A's comparison"
            time.sleep(0.3)
        assert _snapshot_of(now_b["edges"][0]["cursor"]) != pinned

        # Page 2 on B with A's cursor: the rest of A's top 100, ranks going on.
        page2 = _ranking(
            base_b, first=len(whole["edges"]) - 5, after=page1["pageInfo"]["endCursor"]
        )
        assert _ids(page2) == _ids(whole)[5:]
        assert not set(_ids(page2)) & set(_ids(page1))
        assert [e["rank"] for e in page2["edges"]] == list(range(6, len(whole["edges"]) + 1))
        assert [e["score"] for e in page2["edges"]] == [e["score"] for e in whole["edges"][5:]]
        assert page2["totalCount"] == whole["totalCount"]
        assert page2["pageInfo"]["hasPreviousPage"]
        assert page2["pageInfo"]["hasNextPage"] == whole["pageInfo"]["hasNextPage"]
        assert {_snapshot_of(e["cursor"]) for e in page2["edges"]} == {pinned}

        # Backwards on B from page 2's first edge: A's page 1 again.
        back = _ranking(base_b, last=5, before=page2["pageInfo"]["startCursor"])
        assert _ids(back) == _ids(page1)
        assert back["pageInfo"]["hasNextPage"] and not back["pageInfo"]["hasPreviousPage"]
    finally:
        for proc, _ in servers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in servers:
            proc.communicate(timeout=60)


def _sample(big_ids: bool = False, raw_scores: bool = False) -> rankings.Snapshot:
    rng = np.random.default_rng(7)
    scores = np.sort(rng.uniform(-100, 100, 1000))[::-1]
    if not raw_scores:
        scores = np.round(scores, 6)  # as rankings._sorted makes them
    ids = rng.permutation(5000)[:1000].astype(np.int64) + (2**40 if big_ids else 1)
    return rankings.Snapshot('[["largely_recommended", 1.0]]', 42, ids, scores)


@pytest.mark.parametrize("big_ids", [False, True])
@pytest.mark.parametrize("raw_scores", [False, True])
def test_encoding_round_trips_exactly_and_is_compact(big_ids, raw_scores):
    snap = _sample(big_ids, raw_scores)
    encoded = rankings._encode(snap)
    assert encoded.split("|")[1:3] == ["<i8" if big_ids else "<i4", "f" if raw_scores else "q"]
    back = rankings._decode(encoded, 60.0)
    assert back is not None
    assert (back.params, back.version) == (snap.params, snap.version)
    assert back.ids.dtype == np.int64 and back.scores.dtype == np.float64
    assert np.array_equal(back.ids, snap.ids) and np.array_equal(back.scores, snap.scores)
    assert math.isfinite(back.expires)
    assert len(encoded) < 16 * len(snap.ids) * 4 / 3 + 200  # at most the raw arrays in base64


def test_every_process_drops_a_snapshot_when_its_first_one_does():
    snap = _sample()
    snap.expires = time.monotonic() + 5
    back = rankings._decode(rankings._encode(snap), 60.0)
    assert back is not None and back.expires <= snap.expires + 0.01
    snap.expires = time.monotonic() - 1
    assert rankings._decode(rankings._encode(snap), 60.0) is None


def test_an_empty_ranking_round_trips():
    empty = rankings.Snapshot("[]", 3, np.zeros(0, np.int64), np.zeros(0))
    back = rankings._decode(rankings._encode(empty), 60.0)
    assert back is not None and back.ids.size == back.scores.size == 0


@pytest.mark.parametrize(
    "value",
    [
        None,
        12,
        "",
        "1|<i4|q|9e99|not base64!|[]",
        "x|<i4|q|9e99|eJwDAAAAAAE=|[]",  # bad version
        "1|<i2|q|9e99|eJwDAAAAAAE=|[]",  # unknown dtype
        "1|<i4|q|9e99|eJxjYAAAAAQAAQ==|[]",  # truncated arrays
        "1|<i4|q|1.5|eJwDAAAAAAE=|[]",  # expired long ago
        "1|<i4|q|nan|eJwDAAAAAAE=|[]",
        "1|<i4|q|eJwDAAAAAAE=|[]",  # a field missing
    ],
)
def test_an_unreadable_shared_snapshot_is_stale(value):
    assert rankings._decode(value, 60.0) is None


def test_an_expired_snapshot_is_dropped_from_process_memory():
    snap = _sample()
    snap.expires = time.monotonic() - 1
    rankings._remember(-1, snap)
    assert rankings._local(-1) is None and -1 not in rankings._snapshots
    snap.expires = time.monotonic() + 60
    rankings._remember(-1, snap)
    assert rankings._local(-1) is snap
    del rankings._snapshots[-1]


async def test_large_snapshots_are_encoded_off_the_event_loop_identically():
    n = rankings.OFF_LOOP_VIDEOS + 1
    snap = rankings.Snapshot("[]", 1, np.arange(n, dtype=np.int64), np.round(-np.arange(n) / 7, 6))
    encoded = await rankings._off_loop(rankings._encode, snap)

    def strip(encoded: str) -> list[str]:  # all but the expiry (the clock moved)
        return encoded.split("|")[:3] + encoded.split("|")[4:]

    assert strip(encoded) == strip(rankings._encode(snap))
    back = await rankings._off_loop(rankings._decode, encoded, 60.0)
    assert back is not None and np.array_equal(back.scores, snap.scores)
    assert await rankings._off_loop(rankings._decode, 12, 60.0) is None


@dataclass
class _Table:
    """The part of the learner's ranking table a pinned ranking reads (includeUnsafe,
    no filter: no safety or database lookups)."""

    video_ids: np.ndarray
    scores: np.ndarray  # (videos, criteria)
    version: int


@dataclass
class _Learner:
    table: _Table

    async def ranking_table(self) -> _Table:
        return self.table


def _table(version: int, shift: float) -> _Table:
    scores = np.full((6, len(CRITERION_INDEX)), np.nan)
    scores[:, CRITERION_INDEX[MAIN_CRITERION]] = [50, 40, 30, 20, 10, shift]
    return _Table(np.arange(1, 7, dtype=np.int64), scores, version)


@pytest.mark.parametrize("url", ["memory://", pytest.param("redis", marks=pytest.mark.redis)])
async def test_a_snapshot_is_honoured_from_the_cache_until_it_expires(url):
    if url == "redis":
        require_service("Redis", REDIS_HOST, REDIS_PORT)
        url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
    cache = Cache(url, namespace=f"t-{uuid.uuid4().hex}")
    weights = rankings.DEFAULT_WEIGHTS
    catalog = VideoCatalog(0.0)  # not read: every call ranks unsafe videos too, or fails first
    try:
        learner = _Learner(_table(1, 0.0))
        pinned, first = await rankings._snapshot(
            learner, catalog, weights, {}, True, None, None, "after", cache, 1.5
        )
        learner.table = _table(2, 99.0)  # scores moved: computing again gives another ranking
        # another process: nothing in its memory, the shared copy is found
        del rankings._snapshots[pinned]
        again_id, again = await rankings._snapshot(
            learner, catalog, weights, {}, True, None, pinned, "after", cache, 1.5
        )
        assert again_id == pinned and np.array_equal(again.ids, first.ids)
        # other arguments with this cursor: refused
        with pytest.raises(InvalidInput) as refused:
            await rankings._snapshot(
                learner, catalog, weights, {}, False, None, pinned, "after", cache, 1.5
            )
        assert refused.value.code.name == "BAD_PAGINATION"
        # once expired (here and in the cache): STALE_CURSOR
        del rankings._snapshots[pinned]
        await asyncio.sleep(2.0)  # past the 1.5 s lifetime (waiting, not timing)
        with pytest.raises(InvalidInput) as stale:
            await rankings._snapshot(
                learner, catalog, weights, {}, True, None, pinned, "before", cache, 1.5
            )
        assert (stale.value.code.name, stale.value.field) == ("STALE_CURSOR", "before")
    finally:
        await cache.close()
