"""Cross-process propagation: a comparison written on server A reaches a
``scoresUpdated`` subscriber on server B (both on one PostgreSQL database).

Used by tests/test_replicas.py and bench/scale.py. Each sample is the time from the
start of the ``submitComparison`` request on A to the arrival, on B's WebSocket
(graphql-transport-ws), of the update of the compared video whose
``nComparisons`` counts the new comparison: A's transaction, the NOTIFY, B's
catch-up and B's broadcast, plus the request's own time on A.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import statistics
import time

import httpx
import websockets

MAIN = "largely_recommended"
REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { userErrors { message } } }"
LOGIN = "mutation($i: CredentialsInput!) { login(input: $i) { token userErrors { message } } }"
SUBMIT = (
    "mutation($i: SubmitComparisonInput!) { submitComparison(input: $i) {"
    " comparison { id } userErrors { code message } } }"
)
SUBSCRIBE = (
    "subscription($ids: [String!]!) { scoresUpdated(youtubeIds: $ids) {"
    " youtubeId initial scores { criterion nComparisons } } }"
)


def gql(client: httpx.Client, query: str, variables: dict, token: str | None = None) -> dict:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    body = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    ).json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


def account(base: str, username: str) -> str:
    """Register ``username`` on the server at ``base``; returns a bearer token."""
    creds = {"i": {"username": username, "password": "a long enough password"}}
    with httpx.Client(base_url=base, timeout=30) as client:
        errors = gql(client, REGISTER, creds)["register"]["userErrors"]
        if errors:
            raise RuntimeError(errors)
        return gql(client, LOGIN, creds)["login"]["token"]


def _n_main(message: dict) -> int:
    return next((s["nComparisons"] for s in message["scores"] if s["criterion"] == MAIN), 0)


async def propagation(
    base_a: str, base_b: str, token: str, youtube_ids: list[str], n: int, seed: int = 0
) -> list[float]:
    """``n`` comparisons (new pairs of ``youtube_ids``, by the owner of ``token``)
    written on A, each timed until B's subscriber sees it; seconds, in order."""
    pairs = list(itertools.combinations(youtube_ids, 2))
    random.Random(seed).shuffle(pairs)
    if n > len(pairs):
        raise ValueError(f"{len(youtube_ids)} videos make only {len(pairs)} pairs")
    ws_url = "ws" + base_b.removeprefix("http") + "/graphql"
    delays: list[float] = []
    async with (
        websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws,  # type: ignore[list-item]
        httpx.AsyncClient(base_url=base_a, timeout=30) as client,
    ):
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        if json.loads(await ws.recv())["type"] != "connection_ack":
            raise RuntimeError("no connection_ack")
        await ws.send(json.dumps({
            "id": "1", "type": "subscribe",
            "payload": {"query": SUBSCRIBE, "variables": {"ids": youtube_ids}},
        }))  # fmt: skip

        async def next_update() -> dict:
            message = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if message["type"] != "next":
                raise RuntimeError(message)
            return message["payload"]["data"]["scoresUpdated"]

        seen: dict[str, int] = {}
        while len(seen) < len(youtube_ids):  # the initial scores, one message per video
            update = await next_update()
            seen[update["youtubeId"]] = _n_main(update)
        expected = dict(seen)
        for a, b in pairs[:n]:
            expected[a] += 1
            expected[b] += 1
            started = time.perf_counter()
            body = (
                await client.post(
                    "/graphql",
                    json={"query": SUBMIT, "variables": {"i": {
                        "videoA": a, "videoB": b, "scores": [{"criterion": MAIN, "score": 3}],
                    }}},
                    headers={"authorization": f"Bearer {token}"},
                )
            ).json()  # fmt: skip
            if body.get("errors") or body["data"]["submitComparison"]["userErrors"]:
                raise RuntimeError(body)
            while seen[a] < expected[a]:
                update = await next_update()
                seen[update["youtubeId"]] = max(seen[update["youtubeId"]], _n_main(update))
            delays.append(time.perf_counter() - started)
    return delays


def summary(delays: list[float], label: str = "A→B") -> str:
    ms = sorted(d * 1000 for d in delays)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return (
        f"propagation {label} over {len(ms)} writes: p50 {statistics.median(ms):.1f} ms, "
        f"p99 {p99:.1f} ms, min {ms[0]:.1f} ms, max {ms[-1]:.1f} ms"
    )


def main() -> None:
    """Two servers on a fresh PostgreSQL database with the sample data: propagation
    to a subscriber on the writing process (baseline) and on the other one."""
    import argparse
    import asyncio
    import os
    import signal
    import sys
    import tempfile
    import uuid
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.conftest import PG_HOST, PG_PORT, _pg_admin
    from tests.test_crash import _prepare
    from tests.test_ops import _start_server

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--writes", type=int, default=40, help="writes per measurement")
    args = parser.parse_args()
    name = f"sunrank_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    url = f"postgres://postgres@{PG_HOST}:{PG_PORT}/{name}"
    servers = []
    try:
        youtube_ids = asyncio.run(_prepare(url))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUNRANK_")}
        env |= {"SUNRANK_DATABASE_URL": url, "SUNRANK_METADATA_WORKER": "false",
                "SUNRANK_RATE_LIMIT_PER_MINUTE": "1000000"}  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            bases = []
            for k in range(2):
                proc, base = _start_server({**env, "SUNRANK_DATA_DIR": f"{tmp}/{k}"})
                servers.append(proc)
                bases.append(base)
            videos = youtube_ids[: max(10, int((2 * args.writes) ** 0.5) + 2)]
            same = asyncio.run(propagation(bases[0], bases[0], account(bases[0], "same"),
                                           videos, args.writes))  # fmt: skip
            cross = asyncio.run(propagation(bases[0], bases[1], account(bases[0], "cross"),
                                            videos, args.writes, seed=1))  # fmt: skip
        print(f"2 server processes, sample data ({len(youtube_ids)} videos), 2 cores shared")
        print(summary(same, "write on A → subscriber on A"))
        print(summary(cross, "write on A → subscriber on B"))
        print(f"ratio other/same: p50 {statistics.median(cross) / statistics.median(same):.2f}")
    finally:
        for proc in servers:
            proc.send_signal(signal.SIGTERM)
        for proc in servers:
            proc.communicate(timeout=60)
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
