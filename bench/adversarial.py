"""Pathological GraphQL documents against a running server: time and /healthz.

    .venv/bin/python bench/adversarial.py [--repeat 7] [--url http://127.0.0.1:8000]

Without ``--url``: ``sunrank serve --demo`` (SQLite in a temporary directory, the
bundled sample dataset, rate limits lifted, log level warning) in a subprocess.

Each document class is built at the largest size the server's limits admit (query
bytes and tokens, ``--max-query-bytes`` / ``--max-tokens``, default: the settings'
defaults; body size for the variables): the document is as long as can still be
parsed, whether the limits then refuse it or not. Classes:

- ``fragment_explosion``: fragments each spreading the next twice, as many levels as
  the token limit allows (2^levels fields if expanded);
- ``alias_duplication``: the same alias on as many fields as fit;
- ``field_duplication``: one field repeated (graphql-core compares such fields
  pairwise);
- ``fragment_fanout``: hundreds of fragments spread into one selection;
- ``directive_flood``: one field with as many ``@include`` as fit;
- ``deep_selection``: selection sets nested as deep as the parser allows;
- ``deep_variables``: a variable nested 100,000 lists deep (JSON decoding);
- ``largest_body``: a query at the byte limit plus variables up to the body limit.

Each request is sent ``--repeat`` times, one at a time, each made unique by a leading
comment so that no cache (response, parse, validation) answers it; its time is the
client's round trip on loopback. The baseline is a plain ``rankings(first: 20)``
(made unique the same way) measured in the same run. Meanwhile ``/healthz`` is polled
every 20 ms on another connection; a class passes when its median time is at most
20× the baseline's and no ``/healthz`` took 100 ms or more. A control polls
``/healthz`` for 3 s with nothing else sent (on a shared machine, its spikes are the
machine's). Then (``--memory``, when this script started the server) the server's
RSS before and after 300 distinct ~1 MB queries (refused before parsing), then 300
distinct ~16 KB ones (parsed and cached). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api import HOST, free_port, stop  # noqa: E402
from graphql import GraphQLError, parse  # noqa: E402

from app.config import Settings  # noqa: E402

PLAIN = (
    "{ rankings(first: 20) { edges { rank score node { youtubeId title } } "
    "pageInfo { hasNextPage endCursor } } }"
)
MAX_RATIO = 20.0
HEALTHZ_MS = 100.0
DEEP_VARIABLES = 100_000


def explosion(levels: int) -> str:
    spreads = " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} criteria {{ name }} }}"
        for i in range(levels)
    )
    return f"query {{ ...F0 }} {spreads} fragment F{levels} on Query {{ stats {{ users }} }}"


def fanout(n: int) -> str:
    spreads = " ".join(f"...B{i}" for i in range(n))
    fragments = " ".join(f"fragment B{i} on Stats {{ users }}" for i in range(n))
    return f"{{ stats {{ {spreads} }} }} {fragments}"


GROWING: dict[str, Callable[[int], str]] = {
    "fragment_explosion": explosion,
    "alias_duplication": lambda n: "{ " + "a: stats { users } " * n + "}",
    "field_duplication": lambda n: "{ stats { " + "users " * n + "} }",
    "fragment_fanout": fanout,
    "directive_flood": lambda n: "{ stats " + "@include(if: true) " * n + "{ users } }",
    "deep_selection": lambda n: "{ " + "stats { " * n + "users" + " }" * n + " }",
}


def admitted(query: str, max_bytes: int, max_tokens: int) -> bool:
    """Whether the server parses ``query`` (depth and nesting errors included: the
    parser's nesting limit counts as not admitted)."""
    if len(query.encode()) > max_bytes:
        return False
    try:
        parse(query, max_tokens=max_tokens)
    except GraphQLError:
        return False
    return True


def largest(make: Callable[[int], str], max_bytes: int, max_tokens: int) -> str:
    """The document of the largest size the limits admit (binary search)."""
    low, high = 1, 2
    while admitted(make(high), max_bytes, max_tokens):
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if admitted(make(mid), max_bytes, max_tokens) else (low, mid)
    return make(low)


def bodies(max_bytes: int, max_tokens: int, max_body: int) -> dict[str, Callable[[int], bytes]]:
    """Each class: a function of the repeat number returning a unique request body."""
    out: dict[str, Callable[[int], bytes]] = {}

    def unique(query: str, variables: str = "{}") -> Callable[[int], bytes]:
        # the comment fits in the byte limit: 12 bytes taken from the document's room
        return lambda i: (
            '{"query": ' + json.dumps(f"#{i:09d}\n{query}") + ', "variables": ' + variables + "}"
        ).encode()

    out["plain"] = unique(PLAIN)
    room = max_bytes - 12
    for name, make in GROWING.items():
        out[name] = unique(largest(make, room, max_tokens - 1))  # the comment is a token
    nested = "[" * DEEP_VARIABLES + "]" * DEEP_VARIABLES
    out["deep_variables"] = unique(
        "query($v: [String!]) { stats { users } }", '{"v": ' + nested + "}"
    )
    query = "query($id: String!) { video(youtubeId: $id) { title } }"
    query = "#" + "x" * (room - len(query) - 2) + "\n" + query
    filler = max_body - len(query) - 200
    out["largest_body"] = unique(query, json.dumps({"id": "y" * filler}))
    return out


async def poll_healthz(client: httpx.AsyncClient, stop_event: asyncio.Event) -> list[float]:
    latencies = []
    while not stop_event.is_set():
        started = time.perf_counter()
        response = await client.get("/healthz")
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            latencies[-1] = float("inf")
        await asyncio.sleep(0.02)
    return latencies


def outcome(status: int, payload: bytes) -> str:
    try:
        body = json.loads(payload)
    except ValueError:
        return f"{status} (not JSON)"
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors:
        return f"{status} ok"
    error = errors[0]
    code = (error.get("extensions") or {}).get("code") or error.get("message", "")[:40]
    return f"{status} {code}"


def healthz_summary(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    return {
        "healthz_p50_ms": round(statistics.median(ordered), 1),
        "healthz_max_ms": round(ordered[-1], 1),
        "healthz_over_100ms": sum(1 for x in ordered if x >= HEALTHZ_MS),
        "healthz_polls": len(ordered),
    }


async def measure(url: str, requests: dict[str, Callable[[int], bytes]], repeat: int) -> dict:
    results: dict[str, dict] = {}
    headers = {"content-type": "application/json"}
    async with (
        httpx.AsyncClient(base_url=url, timeout=120) as client,
        httpx.AsyncClient(base_url=url, timeout=120) as health,
    ):
        # the control: /healthz with nothing else sent (the machine's own noise)
        stop_event = asyncio.Event()
        poller = asyncio.create_task(poll_healthz(health, stop_event))
        await asyncio.sleep(3)
        stop_event.set()
        idle = healthz_summary(await poller)
        print(f"idle /healthz: {idle}", flush=True)
        serial = 0
        for name, make in requests.items():
            print(f"{name}...", end=" ", flush=True)
            # one unmeasured request first (connection, code paths warm)
            serial += 1
            await client.post("/graphql", content=make(serial), headers=headers)
            stop_event = asyncio.Event()
            poller = asyncio.create_task(poll_healthz(health, stop_event))
            times, seen = [], ""
            for _ in range(repeat):
                serial += 1
                body = make(serial)
                started = time.perf_counter()
                response = await client.post("/graphql", content=body, headers=headers)
                times.append((time.perf_counter() - started) * 1000)
                seen = outcome(response.status_code, response.content)
            await asyncio.sleep(0.05)
            stop_event.set()
            healthz = healthz_summary(await poller)
            print(seen, flush=True)
            results[name] = {
                "bytes": len(make(0)),
                "outcome": seen,
                "median_ms": round(statistics.median(times), 2),
                "min_ms": round(min(times), 2),
                "max_ms": round(max(times), 2),
                **healthz,
            }
    base = results["plain"]["median_ms"]
    for r in results.values():
        r["ratio"] = round(r["median_ms"] / base, 2)
        r["ok"] = r["ratio"] <= MAX_RATIO and r["healthz_over_100ms"] == 0
    return {"idle": idle, "classes": results}


def start(cmd: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """Like bench/api.py's, but the server's log goes to a file: a pipe nobody reads
    fills up with the tracebacks some classes cause, and the server blocks."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not start within 300 s")


def serve(tmp: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUNRANK_")}
    env |= {
        "SUNRANK_DATA_DIR": str(tmp),
        "SUNRANK_LOG_LEVEL": "warning",
        "SUNRANK_RATE_LIMIT_PER_MINUTE": "100000000",
        "SUNRANK_RATE_LIMIT_PER_IP_PER_MINUTE": "100000000",
        "SUNRANK_HOST": HOST,
        "SUNRANK_PORT": str(port),
    }
    started = time.perf_counter()
    log = tmp / "server.log"
    proc = start([sys.executable, "-m", "app", "serve", "--demo"], env, port, log)
    print(
        f"server up (SQLite, demo data) in {time.perf_counter() - started:.1f} s; log: {log}",
        flush=True,
    )
    return proc, f"http://{HOST}:{port}"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def distinct_queries(url: str, pid: int, count: int, size: int) -> dict:
    """RSS of the server before and after ``count`` distinct queries of ``size``
    bytes (a string argument: ``video(youtubeId: "…")``), sent one at a time."""
    before = rss_mib(pid)
    outcomes: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        for i in range(count):
            padding = f"{i:0{size - 40}d}"
            query = f'{{ video(youtubeId: "{padding}") {{ title }} }}'
            response = await client.post("/graphql", json={"query": query})
            seen = outcome(response.status_code, response.content)
            outcomes[seen] = outcomes.get(seen, 0) + 1
    return {
        "queries": count,
        "query_bytes": size,
        "outcomes": outcomes,
        "rss_before_mib": round(before, 1),
        "rss_after_mib": round(rss_mib(pid), 1),
    }


def main() -> None:
    defaults = Settings()
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", help="a running server (default: start one)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--max-query-bytes", type=int, default=defaults.max_query_bytes)
    ap.add_argument("--max-tokens", type=int, default=defaults.max_query_tokens)
    ap.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes)
    ap.add_argument(
        "--memory", type=int, default=300,
        help="distinct ~1 MB and ~15 KB queries sent to read the server's RSS (0: skip; "
        "only when this script starts the server)",
    )  # fmt: skip
    args = ap.parse_args()
    requests = bodies(args.max_query_bytes, args.max_tokens, args.max_body_bytes)
    proc = None
    url = args.url
    if url is None:
        proc, url = serve(Path(tempfile.mkdtemp(prefix="sunrank-bench-adversarial-")))
    memory = []
    try:
        measured = asyncio.run(measure(url, requests, args.repeat))
        if proc is not None and args.memory:
            for size in (1_000_000, args.max_query_bytes - 200):
                memory.append(asyncio.run(distinct_queries(url, proc.pid, args.memory, size)))
                print(f"distinct queries: {memory[-1]}", flush=True)
    finally:
        if proc is not None:
            stop(proc)
    results = measured["classes"]
    print(
        f"{'class':20s} {'bytes':>8s} {'outcome':26s} {'median ms':>9s} {'min':>7s} "
        f"{'max':>7s} {'× plain':>7s} {'healthz p50/max ms':>18s} {'≥100ms':>6s}  ok"
    )
    for name, r in results.items():
        print(
            f"{name:20s} {r['bytes']:8d} {r['outcome'][:26]:26s} {r['median_ms']:9.2f} "
            f"{r['min_ms']:7.2f} {r['max_ms']:7.2f} {r['ratio']:7.2f} "
            f"{r['healthz_p50_ms']:8.1f} /{r['healthz_max_ms']:7.1f} "
            f"{r['healthz_over_100ms']:3d}/{r['healthz_polls']:<3d} {'yes' if r['ok'] else 'NO'}"
        )
    idle = measured["idle"]
    print(
        f"control, /healthz with no other request: p50 {idle['healthz_p50_ms']} ms, max "
        f"{idle['healthz_max_ms']} ms, {idle['healthz_over_100ms']}/{idle['healthz_polls']} ≥100 ms"
    )
    print(json.dumps({
        "bench": "adversarial", "url": args.url or "sunrank serve --demo (SQLite)",
        "repeat": args.repeat, "max_ratio": MAX_RATIO, "healthz_ms": HEALTHZ_MS,
        "idle_healthz": measured["idle"], "results": results, "memory": memory,
        "targets_met": all(r["ok"] for r in results.values()),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
