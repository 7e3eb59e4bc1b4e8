"""Scale-out benchmark: 1 vs 2 Sunrank server processes on one PostgreSQL database.

    .venv/bin/python bench/scale.py [--seconds 5] [--repeat 3] [--clients 16] [--samples 40]

Setup: a fresh PostgreSQL database (127.0.0.1:5432, dropped at the end) with
``tiny_tournesol_2024-01`` imported and a pool of 32 users with bearer tokens (the
same setup as bench/api.py); Redis on 127.0.0.1:6379 holds the response cache and the
rate-limit counters (a namespace of this run), as in the N-process topology. Servers
A and B (two ``sunrank serve``, one process each, same database) start; after a
discarded warm-up, each scenario runs ``--repeat`` rounds, each round once with every
client on A (``1 process``; B is up but gets no request) and once with the clients
split half on A, half on B (``2 processes``), the order alternating between rounds.
The ratio 2/1 is taken per round (runs moments apart on a shared, noisy machine);
median, min and max over the rounds. Each client keeps one HTTP/1.1 keep-alive
connection; a run lasts ``--seconds`` after a 1 s warm-up.

Scenarios: ``rankings`` (``rankings(first: 20)``, 4 criterion weights, cache on),
``video`` (``video(youtubeId)`` with its scores, 200 videos), ``submit``
(``submitComparison`` from the user pool on random pairs of 300 videos: a write, the
online update on the receiving process, and the follow-up on the other one; in the
``1 process`` runs B still follows A's writes, which costs A's machine some CPU).

Then the cross-process propagation delay with no other load: ``--samples``
comparisons written on A, each timed from the start of the request until a
``scoresUpdated`` subscriber on B receives the new score (bench/_replicas.py).

The load generator shares the machine's 2 cores with the servers (and with whatever
else runs): with 2 processes, 3 processes compete for 2 cores, so the figures are the
capacity of this small machine, not of the design. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._replicas import account, propagation  # noqa: E402
from bench.api import (  # noqa: E402
    HOST,
    RANKINGS,
    SUBMIT,
    TINY,
    VIDEO,
    free_port,
    prepare,
    run_load,
    start,
    stop,
    summarize,
)

PG = "postgres://postgres@127.0.0.1:5432"


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(user="postgres", host="127.0.0.1", port=5432, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def measure(topologies: dict[str, list[int]], scenarios: dict, args, results: dict) -> dict:
    """Each scenario: ``--repeat`` rounds, each round one run per topology (the order
    alternates between rounds), so every ratio pairs runs made moments apart."""
    ratios: dict[str, dict] = {}
    (one, ports_one), (two, ports_two) = topologies.items()
    for name, make_request in scenarios.items():
        runs: dict[str, list[dict]] = {one: [], two: []}
        paired = []
        for round_ in range(args.repeat):
            order = [one, two] if round_ % 2 == 0 else [two, one]
            for label in order:
                ports = ports_one if label == one else ports_two
                runs[label].append(
                    asyncio.run(run_load(ports, make_request, args.clients, args.seconds))
                )
            paired.append(runs[two][-1]["rps"] / runs[one][-1]["rps"])
        for label in (one, two):
            r = results.setdefault(name, {})[label] = summarize(runs[label])
            print(
                f"{label:11s} {name:9s} {r['rps']:8.1f} req/s (min {r['rps_min']:.1f}, "
                f"max {r['rps_max']:.1f})  p50 {r['p50_ms']:6.2f} ms  "
                f"p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}",
                flush=True,
            )
        ratios[name] = {
            "median": round(statistics.median(paired), 2),
            "min": round(min(paired), 2),
            "max": round(max(paired), 2),
        }
        print(
            f"ratio 2/1   {name:9s} {ratios[name]['median']:.2f} "
            f"(min {ratios[name]['min']:.2f}, max {ratios[name]['max']:.2f})",
            flush=True,
        )
    return ratios


def settle(bases: list[str]) -> None:
    """Wait until no process is refitting or behind (startup refits, first exports)."""
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = [httpx.get(f"{b}/readyz", timeout=30).json() for b in bases]
        if all(
            s.get("events_behind") == 0 and not s.get("full_fit", {}).get("refit_running")
            for s in states
        ):
            return
        time.sleep(1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--samples", type=int, default=40, help="propagation samples")
    args = ap.parse_args()
    if min(args.repeat, args.clients, args.samples) < 1 or args.seconds <= 0:
        ap.error("--seconds, --repeat, --clients and --samples must be positive")

    name = f"sunrank_bench_scale_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    db_url = f"{PG}/{name}"
    procs = []
    try:
        t0 = time.perf_counter()
        tokens, ids = asyncio.run(prepare(db_url))
        took = time.perf_counter() - t0
        print(f"setup: {TINY.name} imported, {len(tokens)} users ({took:.1f} s)")
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / name
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUNRANK_")}
        env |= {
            "SUNRANK_DATABASE_URL": db_url,
            "SUNRANK_CACHE_URL": "redis://127.0.0.1:6379/0",
            "SUNRANK_CACHE_NAMESPACE": name,  # this run's keys only
            "SUNRANK_LOG_LEVEL": "warning",
            "SUNRANK_RATE_LIMIT_PER_MINUTE": "100000000",
            "SUNRANK_RATE_LIMIT_PER_IP_PER_MINUTE": "100000000",
            "SUNRANK_METADATA_WORKER": "false",
            "SUNRANK_HOST": HOST,
        }

        def serve(label: str) -> int:
            port = free_port()
            server_env = env | {"SUNRANK_PORT": str(port), "SUNRANK_DATA_DIR": str(tmp / label)}
            t = time.perf_counter()
            procs.append(start([sys.executable, "-m", "app", "serve"], server_env, port, "/readyz"))
            print(f"server {label} up in {time.perf_counter() - t:.1f} s", flush=True)
            return port

        rankings_body = json.dumps({"query": RANKINGS}).encode()
        video_bodies = [
            json.dumps({"query": VIDEO, "variables": {"id": yt}}).encode() for yt in ids[:200]
        ]

        def submit(rng: random.Random, i: int):
            a, b = rng.sample(ids, 2)
            body = {"query": SUBMIT, "variables": {"a": a, "b": b, "s": rng.randint(-10, 10)}}
            return json.dumps(body).encode(), tokens[i % len(tokens)], b'"userErrors":[]'

        scenarios = {
            "rankings": lambda rng, i: (rankings_body, None, b"edges"),
            "video": lambda rng, i: (rng.choice(video_bodies), None, b"scores"),
            "submit": submit,
        }
        results: dict[str, dict] = {}
        port_a, port_b = serve("A"), serve("B")
        base_a, base_b = f"http://{HOST}:{port_a}", f"http://{HOST}:{port_b}"
        for make_request in scenarios.values():  # warm-up (discarded): caches, tracing
            asyncio.run(run_load([port_a, port_b], make_request, args.clients, 2.0))
        settle([base_a, base_b])
        topologies = {"1 process": [port_a], "2 processes": [port_a, port_b]}
        ratios = measure(topologies, scenarios, args, results)

        settle([base_a, base_b])
        token = account(base_a, f"bench_prop_{uuid.uuid4().hex[:6]}")
        n_videos = 2  # enough videos for ``--samples`` distinct pairs
        while n_videos * (n_videos - 1) // 2 < args.samples:
            n_videos += 1
        delays = asyncio.run(propagation(base_a, base_b, token, ids[-n_videos:], args.samples))
        ms = sorted(d * 1000 for d in delays)
        prop = {
            "samples": len(ms),
            "p50_ms": round(statistics.median(ms), 1),
            "p99_ms": round(ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))], 1),
            "min_ms": round(ms[0], 1),
            "max_ms": round(ms[-1], 1),
        }
        print(
            f"propagation A→B ({prop['samples']} writes): p50 {prop['p50_ms']} ms, "
            f"p99 {prop['p99_ms']} ms (min {prop['min_ms']}, max {prop['max_ms']})"
        )
        print(json.dumps({
            "bench": "scale", "clients": args.clients, "seconds": args.seconds,
            "repeat": args.repeat, "dataset": TINY.name, "results": results,
            "ratio_2_over_1": ratios, "propagation": prop,
        }))  # fmt: skip
    finally:
        for proc in procs:
            stop(proc)
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
