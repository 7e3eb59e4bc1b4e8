"""Crash safety under load: a real server, 8 clients submitting comparisons,
``kill -9`` in the middle, restart.

After the restart every acknowledged comparison is in the database and in the
learner, nothing is half-written, and the restarted learner (newest checkpoint +
replayed events) equals a full fit of the stored comparisons within the learner's
stated online-vs-refit tolerance. Runs on a SQLite file and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np

from app.config import load_settings
from app.datasets.importer import import_dataset
from app.datasets.reader import read_dataset
from app.db import connection
from app.db.models import Comparison, ComparisonScore, Event, EventKind, Video, VideoScore
from app.engine.service import LearnerService
from app.learner.scale import unsquash
from tests.conftest import SAMPLE
from tests.test_ops import _start_server

CLIENTS = 8
TARGET_ACKS = 150  # kill once this many mutations were acknowledged (or after LOAD_S)
LOAD_S = 20
# The learner's stated tolerance between online updates and a refit (global scores,
# raw units; tests/learner/test_learner.py).
ONLINE_VS_REFIT = 0.05

REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { userErrors { message } } }"
LOGIN = "mutation($i: CredentialsInput!) { login(input: $i) { token userErrors { message } } }"
SUBMIT = (
    "mutation($i: SubmitComparisonInput!) { submitComparison(input: $i) {"
    " comparison { id } userErrors { code message } } }"
)


def _gql(client: httpx.Client, query: str, variables: dict, token: str | None = None) -> dict:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    body = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    ).json()
    assert not body.get("errors"), body
    return body["data"]


def _load(base: str, youtube_ids: list[str], stop: threading.Event) -> tuple[list, list]:
    """8 threads submit comparisons on fresh pairs; returns (acknowledged, sent)."""
    acked, sent, lock = [], [], threading.Lock()
    tokens = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for k in range(CLIENTS):
            creds = {"i": {"username": f"crash{k}", "password": "a long enough password"}}
            assert not _gql(client, REGISTER, creds)["register"]["userErrors"]
            tokens.append(_gql(client, LOGIN, creds)["login"]["token"])

    def client_loop(k: int) -> None:
        rng = random.Random(k)
        seen: set[tuple[str, str]] = set()
        with httpx.Client(base_url=base, timeout=30) as client:
            while not stop.is_set():
                a, b = rng.sample(youtube_ids, 2)
                if (a, b) in seen or (b, a) in seen:
                    continue
                seen.add((a, b))
                score = rng.randint(-10, 10)
                with lock:
                    sent.append((f"crash{k}", a, b, score))
                try:
                    data = _gql(client, SUBMIT, {"i": {
                        "videoA": a, "videoB": b,
                        "scores": [{"criterion": "largely_recommended", "score": score}]}},
                        tokens[k])  # fmt: skip
                except (httpx.TransportError, ValueError):
                    return  # the server is gone
                result = data["submitComparison"]
                assert not result["userErrors"], result
                with lock:
                    acked.append((f"crash{k}", a, b, score))

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(client_loop, k) for k in range(CLIENTS)]
        deadline = time.monotonic() + LOAD_S
        while len(acked) < TARGET_ACKS and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()  # the caller kills the server now; clients see it die
        for f in futures:
            f.exception()
    return acked, sent


async def _stored() -> Counter:
    rows = await ComparisonScore.filter(comparison__user__username__startswith="crash").values_list(
        "comparison__user__username", "comparison__video_a__youtube_id",
        "comparison__video_b__youtube_id", "score",
    )  # fmt: skip
    out = Counter()
    for user, a, b, score in rows:
        out[(user, *sorted((a, b)), score if a < b else -score)] += 1
    return out


def _canon(user: str, a: str, b: str, score: int) -> tuple:
    return (user, a, b, score) if a < b else (user, b, a, -score)


def test_kill_9_under_load_loses_no_acknowledged_comparison(db_url, env_for, tmp_path):
    youtube_ids = asyncio.run(_prepare(db_url))
    env = {
        **env_for, "SUNRANK_DATABASE_URL": db_url, "SUNRANK_RATE_LIMIT_PER_MINUTE": "1000000",
        "SUNRANK_CHECKPOINT_EVERY_SECONDS": "1",  # checkpoints land during the load
    }  # fmt: skip
    server, base = _start_server(env)
    stop = threading.Event()
    killer = threading.Thread(target=lambda: (stop.wait(), os.kill(server.pid, signal.SIGKILL)))
    killer.start()
    acked, sent = _load(base, youtube_ids, stop)
    killer.join()
    server.wait(timeout=30)
    assert server.returncode == -signal.SIGKILL

    restarted, base = _start_server(env)  # newest valid checkpoint + replay of the log
    try:
        with httpx.Client(base_url=base) as client:
            ready = client.get("/readyz").json()
        assert ready["events_behind"] == 0
    finally:
        restarted.send_signal(signal.SIGTERM)  # graceful: flushes scores to the tables
        restarted.wait(timeout=60)
    assert restarted.returncode == 0

    found, reflected, gap = asyncio.run(_check(db_url, tmp_path))
    acked_set = {_canon(*c) for c in acked}
    sent_set = {_canon(*c) for c in sent}
    print(
        f"\ncrash test ({db_url.split(':')[0]}): {len(acked)} acknowledged, "
        f"{len(sent)} sent, {sum(found.values())} found after restart; "
        f"largest gap to a full fit {gap:.2e} raw"
    )
    assert acked_set <= set(found), "an acknowledged comparison was lost"
    assert set(found) <= sent_set, "a stored comparison was never sent"
    assert all(n == 1 for n in found.values())
    assert reflected, "the restarted learner does not count every stored comparison"
    assert gap <= ONLINE_VS_REFIT


async def _prepare(db_url: str) -> list[str]:
    """Migrate, import the sample; return its YouTube ids."""
    await connection.migrate(db_url)
    await connection.init(db_url)
    try:
        await import_dataset(read_dataset(SAMPLE))
        return sorted(await Video.all().values_list("youtube_id", flat=True))
    finally:
        await connection.close()


async def _check(db_url: str, tmp_path) -> tuple[Counter, bool, float]:
    await connection.init(db_url)
    try:
        found = await _stored()
        # No half-written comparison: each has its score rows and its creation event.
        comparisons = await Comparison.all().count()
        with_scores = await Comparison.filter(scores__id__isnull=False).distinct().count()
        created = await Event.filter(kind=EventKind.COMPARISON_CREATED).count()
        assert comparisons == with_scores == created
        # Reflected in the learner: the flushed counts cover every stored score row.
        rows = await ComparisonScore.filter(criterion="largely_recommended").count()
        counted = sum(
            await VideoScore.filter(criterion="largely_recommended").values_list(
                "n_comparisons", flat=True
            )
        )
        served = dict(
            await VideoScore.filter(criterion="largely_recommended").values_list(
                "video_id", "score"
            )
        )
        # A full fit of exactly what is stored, in a fresh learner.
        reference = LearnerService(
            load_settings({}, database_url=db_url, data_dir=tmp_path / "reference")
        )
        await reference.start(background=False)
        fitted = {
            v: views["largely_recommended"].raw
            for v, views in reference._views.items()
            if "largely_recommended" in views
        }
        await reference.stop()
    finally:
        await connection.close()
    assert served.keys() == fitted.keys()
    ids = sorted(fitted)
    gap = float(np.max(np.abs(unsquash([served[v] for v in ids]) - [fitted[v] for v in ids])))
    return found, counted == 2 * rows, gap
