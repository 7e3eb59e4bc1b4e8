"""Equal server processes on one PostgreSQL database (issue 13), with real
``sunrank serve`` subprocesses:

- a comparison written on A reaches a ``scoresUpdated`` subscriber on B;
- ``kill -9`` of the refit leader under 8 concurrent writers (on both processes):
  every acknowledged comparison is stored, the other process takes the lead;
- a process started late (own, empty data dir) starts from the fitted state
  published in the database and catches up;
- once writes stop, every process converges to a full fit of the stored
  comparisons within the live-vs-full-fit promise (tests/test_live_gap.py).

No timing is asserted: delays are printed (bench/_replicas.py measures them).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.criteria import CRITERION_NAMES
from app.db import connection
from app.db.models import ComparisonScore, Event, Video
from app.engine import dbio
from app.learner.model import Learner
from app.learner.scale import squash
from bench._replicas import SUBMIT, account, gql, propagation, summary
from tests.test_crash import _prepare
from tests.test_ops import _start_server

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WRITERS = 8
ACKS_BEFORE_KILL = 60
ACKS_AFTER_KILL = 30  # on the survivor, before the writers stop
POINT = 1.0  # live vs full fit, display points (tests/test_live_gap.py)
WAIT_S = 180  # generous bound for conditions on a loaded machine (not a timing assertion)


def _ready(base: str) -> dict:
    return httpx.get(f"{base}/readyz", timeout=30).json()


def _wait(what: str, condition) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < WAIT_S, f"not within {WAIT_S} s: {what}"
        time.sleep(0.2)
    return time.monotonic() - started


def _write_under_kill(
    bases: list[str], tokens: list[str], youtube_ids: list[str], kill
) -> tuple[list[tuple], int]:
    """8 writers, alternately on each server; ``kill()`` after ``ACKS_BEFORE_KILL``
    acknowledgements, then go on until the survivors acknowledged
    ``ACKS_AFTER_KILL`` more. Returns the acknowledged comparisons and how many
    were acknowledged before the kill."""
    acked: list[tuple] = []
    lock, stop = threading.Lock(), threading.Event()

    def writer(k: int) -> None:
        rng = random.Random(k)
        seen: set[frozenset] = set()
        with httpx.Client(base_url=bases[k % len(bases)], timeout=30) as client:
            while not stop.is_set():
                a, b = rng.sample(youtube_ids, 2)
                if frozenset((a, b)) in seen:
                    continue
                seen.add(frozenset((a, b)))
                score = rng.randint(-10, 10)
                try:
                    data = gql(client, SUBMIT, {"i": {
                        "videoA": a, "videoB": b,
                        "scores": [{"criterion": "largely_recommended", "score": score}]}},
                        tokens[k])  # fmt: skip
                except (httpx.TransportError, ValueError):
                    return  # its server is gone
                assert not data["submitComparison"]["userErrors"], data
                with lock:
                    acked.append((f"rep{k}", *sorted((a, b)), score if a < b else -score))

    with ThreadPoolExecutor(WRITERS) as pool:
        futures = [pool.submit(writer, k) for k in range(WRITERS)]
        _wait("acknowledged writes", lambda: len(acked) >= ACKS_BEFORE_KILL)
        kill()
        before = len(acked)
        _wait("writes after the kill", lambda: len(acked) >= before + ACKS_AFTER_KILL)
        stop.set()
        for f in futures:
            f.result()
    return acked, before


async def _stored_and_full_fit(db_url: str) -> tuple[set[tuple], int, dict]:
    """Stored comparisons of the writers, the last event id, and the display scores
    of a full fit of everything stored, by (youtube id, criterion)."""
    await connection.init(db_url)
    try:
        rows = await ComparisonScore.filter(
            comparison__user__username__startswith="rep"
        ).values_list(
            "comparison__user__username", "comparison__video_a__youtube_id",
            "comparison__video_b__youtube_id", "score",
        )  # fmt: skip
        last = await dbio.last_event_id()
        inputs = await dbio.load_inputs()
        youtube = dict(await Video.all().values_list("id", "youtube_id"))
        # Ids may have gaps (a transaction the kill cut off used one), never extras.
        assert await Event.all().count() <= last
    finally:
        await connection.close()
    learner = Learner()
    learner.load(inputs.comparisons, inputs.pretrust, inputs.vouches, inputs.private)
    assert learner.fit().converged
    fitted = {}
    for c, name in enumerate(CRITERION_NAMES):
        ids, raw, *_ = learner.video_scores(c)
        for vid, score in zip(ids.tolist(), squash(raw).tolist(), strict=True):
            fitted[(youtube[vid], name)] = score
    return {tuple(r) for r in rows}, last, fitted


def _served(base: str, token: str, youtube_ids: list[str]) -> dict:
    """A process's display scores of ``youtube_ids``, by (youtube id, criterion)."""
    out = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for start in range(0, len(youtube_ids), 20):  # 20 aliases per document
            chunk = youtube_ids[start : start + 20]
            query = (
                "query {"
                + " ".join(
                    f'v{i}: video(youtubeId: "{yt}") {{ youtubeId scores {{ criterion score }} }}'
                    for i, yt in enumerate(chunk)
                )
                + "}"
            )
            for video in gql(client, query, {}, token).values():
                for s in video["scores"]:
                    out[(video["youtubeId"], s["criterion"])] = s["score"]
    return out


def test_equal_processes_failover_late_start_and_convergence(postgres_url, env_for, tmp_path):
    youtube_ids = asyncio.run(_prepare(postgres_url))
    env = {
        **env_for, "SUNRANK_DATABASE_URL": postgres_url,
        "SUNRANK_RATE_LIMIT_PER_MINUTE": "1000000", "SUNRANK_PUBLISH_EVERY_SECONDS": "1",
    }  # fmt: skip
    servers: list = []

    def start(name: str) -> str:
        proc, base = _start_server({**env, "SUNRANK_DATA_DIR": str(tmp_path / name)})
        servers.append(proc)
        return base

    try:
        base_a = start("a")
        base_b = start("b")
        assert _ready(base_a)["role"] == "leader"
        assert _ready(base_b)["role"] == "follower"
        assert _ready(base_b)["checkpoint"] is not None  # started from A's published fit

        # 1. A write on A reaches a subscriber on B.
        token = account(base_a, "prop")
        delays = asyncio.run(propagation(base_a, base_b, token, youtube_ids[:6], n=10))
        print("\n" + summary(delays))

        # 2. kill -9 of the leader under 8 writers, half of them on each process.
        tokens = [account(base_a, f"rep{k}") for k in range(WRITERS)]
        killed_at: list[float] = []

        def kill() -> None:
            os.kill(servers[0].pid, signal.SIGKILL)
            killed_at.append(time.monotonic())

        acked, before = _write_under_kill([base_a, base_b], tokens, youtube_ids, kill)
        servers[0].wait(timeout=30)
        assert servers[0].returncode == -signal.SIGKILL
        _wait("B leads", lambda: _ready(base_b)["role"] == "leader")
        takeover = time.monotonic() - killed_at[0]

        # 3. A process started late, with an empty data dir of its own.
        base_c = start("c")
        late = _ready(base_c)
        assert late["role"] == "follower" and late["checkpoint"] is not None
        assert late["events_behind"] == 0

        # 4. Writes stopped: every process converges to a full fit of what is stored.
        stored, last, fitted = asyncio.run(_stored_and_full_fit(postgres_url))
        assert set(acked) <= stored, "an acknowledged comparison was lost"

        def converged(base: str) -> bool:
            r = _ready(base)
            at = r["role"] == "leader" or (r["checkpoint"] or {}).get("watermark") == last
            return r["events_behind"] == 0 and r["full_fit"]["events_since_refit"] == 0 and at

        settle = _wait("B and C converge", lambda: converged(base_b) and converged(base_c))
        gaps = {}
        for name, base in (("B", base_b), ("C", base_c)):
            served = _served(base, token, youtube_ids)
            assert served.keys() == fitted.keys()
            gaps[name] = max(abs(served[k] - fitted[k]) for k in fitted)
        print(
            f"{len(acked)} acknowledged ({before} before the kill), {len(stored)} stored; "
            f"B led {takeover:.1f} s after the kill; converged {settle:.1f} s after the "
            f"check; largest gap to a full fit: B {gaps['B']:.3f}, C {gaps['C']:.3f} points"
        )
        assert max(gaps.values()) <= POINT
    finally:
        for proc in servers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in servers:
            proc.communicate(timeout=60)
