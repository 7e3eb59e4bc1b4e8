"""GraphQL API benchmark: req/s and latency at 16 concurrent clients.

    .venv/bin/python bench/api.py [--seconds 5] [--repeat 3] [--clients 16]
                                  [--scenarios ceiling,rankings_cold,...]

Setup: a temporary SQLite database with ``tiny_tournesol_2024-01`` imported, a
pool of 32 users with bearer tokens, then ``sunrank serve`` (uvicorn, one worker,
127.0.0.1 only, rate limit lifted, log level warning) in a subprocess. The load
comes from this process: 16 asyncio clients, each on its own keep-alive HTTP/1.1
connection, for a fixed time per run (after a 1 s warm-up), ``--repeat`` runs.

Scenarios (median and spread over the runs; p50/p99 over all requests of a run):
- ``ceiling``: a plain Starlette JSON endpoint returning 20 ranking-like items
  (its own uvicorn process), the most this machine + client can do;
- ``rankings_warm``: ``rankings(first: 20)`` with 4 criterion weights, cache on;
- ``rankings_cold``: the same with the cache disabled (SUNRANK_CACHE_ENABLED=false,
  a second server on the same database);
- ``rankings_cold_default``: the same without ``includeUnsafe`` (a front-end's
  default ranking: the safety mask, unavailable and moderated videos left out);
- ``video``: ``video(youtubeId)`` with its scores, over a pool of 200 videos;
- ``submit``: ``submitComparison`` from the user pool on random pairs of a pool
  of 300 videos (each request is a real write + online learner update).

Each scenario's rate is also given as a ratio to ``ceiling`` (``vs_ceiling``): the
ceiling server stays up for the whole run and each scenario run is preceded by a
ceiling run, the ratio being the median of these run-by-run ratios (min and max
given): on a machine shared with other work, the load moves less between two
consecutive runs than between the start and the end of the bench. The load
generator shares the 2 cores with the server, so every figure is a lower bound.
The server's CPU time per request (``cpu_us``, from /proc after the warm-up) is
given too, and ``cpu_vs_ceiling`` = the ceiling's over the scenario's, paired the
same way: what the server costs per request, which competing load (the load
generator included) moves far less than throughput.
Bounded: each run stops after ``--seconds``. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TINY = ROOT / "data" / "tournesol" / "tiny_tournesol_2024-01"
HOST = "127.0.0.1"
N_USERS = 32

RANKINGS = (  # includeUnsafe: the ranking alone (rankings_cold_default: the safe one)
    "{ rankings(first: 20, includeUnsafe: true, weights: [{criterion: largely_recommended, "
    "weight: 1}, {criterion: reliability, weight: 0.5}, {criterion: importance, "
    "weight: 0.5}, {criterion: pedagogy, weight: 0.25}]) { edges { rank score node { "
    "youtubeId title } } pageInfo { hasNextPage endCursor } } }"
)
VIDEO = (
    "query($id: String!) { video(youtubeId: $id) { youtubeId title tournesolScore "
    "scores { criterion score uncertainty nContributors nComparisons } } }"
)
SUBMIT = (
    "mutation($a: String!, $b: String!, $s: Int!) { submitComparison(input: {videoA: $a, "
    "videoB: $b, scores: [{criterion: largely_recommended, score: $s}]}) { "
    "videoA { tournesolScore } videoB { tournesolScore } userErrors { code } } }"
)

CEILING_APP = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
DATA = {"data": {"rankings": {"edges": [
    {"rank": i + 1, "score": 50.0 - i, "node": {"youtubeId": "abcdefghij%d" % (i % 10),
     "title": "A video title number %d" % i}} for i in range(20)],
    "pageInfo": {"hasNextPage": True, "endCursor": "WyJyYW5rIiwgNDguMCwgMTJd"}}}}
async def endpoint(request):
    await request.body()
    return JSONResponse(DATA)
app = Starlette(routes=[Route("/graphql", endpoint, methods=["GET", "POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- setup
async def prepare(db_url: str) -> tuple[list[str], list[str]]:
    """Import the tiny dataset; create the user pool. Returns (tokens, youtube ids)."""
    from app import auth
    from app.datasets.importer import import_dataset
    from app.datasets.reader import read_dataset
    from app.db import connection
    from app.db.models import ApiToken, User, Video

    await connection.migrate(db_url)
    await connection.init(db_url)
    try:
        await import_dataset(read_dataset(TINY, progress=False), progress=False)
        password_hash = await auth.hash_password(secrets.token_urlsafe(12))
        tokens = []
        for i in range(N_USERS):
            user = await User.create(username=f"bench_{i}", password_hash=password_hash)
            token = secrets.token_urlsafe(32)
            await ApiToken.create(user_id=user.id, token_sha256=auth.sha256(token))
            tokens.append(token)
        ids = await Video.all().order_by("id").limit(300).values_list("youtube_id", flat=True)
    finally:
        await connection.close()
    return tokens, list(ids)


def start(cmd: list[str], env: dict[str, str], port: int, path: str = "/healthz"):
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    return proc
        except OSError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not start within 300 s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


# --------------------------------------------------------------------------- client
class Conn:
    """A minimal keep-alive HTTP/1.1 client (Content-Length bodies only)."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes, token: str | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        head = (
            f"POST /graphql HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"{auth}Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_load(
    port: int | list[int], make_request, clients: int, seconds: float, pid: int | None = None
) -> dict:
    """``clients`` loops for ``seconds`` (after a 1 s warm-up); latencies in ms. With
    several ports, client ``i`` talks to server ``port[i % len(port)]``. With ``pid``
    (the server's), also the server's CPU time per request measured (``cpu_us``)."""
    ports = port if isinstance(port, list) else [port]
    latencies: list[float] = []
    errors = 0
    cpu: list[float] = []
    warm_until = time.perf_counter() + 1.0
    end = warm_until + seconds

    async def client(i: int) -> None:
        nonlocal errors
        conn = Conn(ports[i % len(ports)])
        rng = random.Random(i)
        try:
            while (now := time.perf_counter()) < end:
                if pid is not None and now >= warm_until and not cpu:
                    cpu.append(cpu_seconds(pid))  # the first client past the warm-up
                body, token, check = make_request(rng, i)
                status, payload = await conn.post(body, token)
                took = time.perf_counter() - now
                if status != 200 or (check and check not in payload):
                    errors += 1
                if now >= warm_until:
                    latencies.append(took * 1000)
        finally:
            conn.close()

    await asyncio.gather(*(client(i) for i in range(clients)))
    latencies.sort()
    n = len(latencies)
    # requests started after the first CPU reading; those in flight at either end
    # roughly cancel out
    cpu_us = 1e6 * (cpu_seconds(pid) - cpu[0]) / n if cpu and n else None
    return {
        "cpu_us": cpu_us,
        "rps": n / seconds,
        "p50_ms": latencies[n // 2] if n else float("nan"),
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] if n else float("nan"),
        "requests": n,
        "errors": errors,
    }


def summarize(runs: list[dict]) -> dict:
    rps = [r["rps"] for r in runs]
    cpu = [r["cpu_us"] for r in runs if r.get("cpu_us") is not None]
    return {
        **({"cpu_us": round(statistics.median(cpu), 1)} if cpu else {}),
        "rps": round(statistics.median(rps), 1),
        "rps_min": round(min(rps), 1),
        "rps_max": round(max(rps), 1),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 2),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 2),
        "errors": sum(r["errors"] for r in runs),
    }


def measure(name, port, make_request, args, results, ceiling=None, pid=None) -> None:
    """``args.repeat`` runs of ``name``. With ``ceiling`` (port, request maker, pid),
    each run is preceded by a run of the ceiling, and ``vs_ceiling`` is the median of
    the run-by-run ratios: on a shared machine the load moves between scenarios, much
    less between two consecutive runs. ``cpu_vs_ceiling`` is the same for the
    servers' CPU time per request (ceiling's / this one's), which other load on the
    machine moves much less than it moves throughput."""
    runs, ratios, cpu_ratios = [], [], []
    for _ in range(args.repeat):
        if ceiling is not None:
            paired = asyncio.run(run_load(*ceiling[:2], args.clients, args.seconds, ceiling[2]))
            results.setdefault("_ceiling_runs", []).append(paired)
        runs.append(asyncio.run(run_load(port, make_request, args.clients, args.seconds, pid)))
        if ceiling is not None and paired["rps"]:
            ratios.append(runs[-1]["rps"] / paired["rps"])
            if paired["cpu_us"] and runs[-1]["cpu_us"]:
                cpu_ratios.append(paired["cpu_us"] / runs[-1]["cpu_us"])
    results[name] = summarize(runs)
    r = results[name]
    for key, values in (("vs_ceiling", ratios), ("cpu_vs_ceiling", cpu_ratios)):
        if values:
            r[key] = round(statistics.median(values), 4)
            r[f"{key}_min"] = round(min(values), 4)
            r[f"{key}_max"] = round(max(values), 4)
    cpu = f"  server CPU {r['cpu_us']:7.1f} us/req" if "cpu_us" in r else ""
    print(
        f"{name:14s} {r['rps']:8.1f} req/s (min {r['rps_min']:.1f}, max {r['rps_max']:.1f})  "
        f"p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  errors {r['errors']}{cpu}",
        flush=True,
    )


SCENARIOS = (
    "ceiling", "rankings_warm", "video", "submit", "rankings_cold", "rankings_cold_default",
)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated subset of " + ", ".join(SCENARIOS) + " (ceiling always runs)",
    )
    ap.add_argument(
        "--profile",
        metavar="OUT",
        help="attach py-spy to the rankings_cold server while it is measured and write a "
        "collapsed-stack profile (flamegraph.pl / speedscope input) to OUT; needs py-spy: "
        ".venv/bin/pip install -e '.[bench]'",
    )
    args = ap.parse_args()
    wanted = set(args.scenarios.split(",")) | {"ceiling"}
    if unknown := wanted - set(SCENARIOS):
        ap.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    tmp = Path(tempfile.mkdtemp(prefix="sunrank-bench-api-"))
    db_url = f"sqlite://{tmp / 'sunrank.sqlite3'}"
    started = time.perf_counter()
    tokens, ids = asyncio.run(prepare(db_url))
    took = time.perf_counter() - started
    print(f"setup: tiny dataset imported, {len(tokens)} users ({took:.1f} s)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUNRANK_")}
    env |= {
        "SUNRANK_DATA_DIR": str(tmp),
        "SUNRANK_DATABASE_URL": db_url,
        "SUNRANK_LOG_LEVEL": "warning",
        "SUNRANK_RATE_LIMIT_PER_MINUTE": "100000000",
        "SUNRANK_RATE_LIMIT_PER_IP_PER_MINUTE": "100000000",
        "SUNRANK_METADATA_WORKER": "false",  # no YouTube here: keep its retries out
        "SUNRANK_HOST": HOST,
    }
    results: dict[str, dict] = {}
    rankings_body = json.dumps({"query": RANKINGS}).encode()

    # the ceiling: plain Starlette, up for the whole run (each scenario run is paired
    # with a ceiling run just before it)
    ceiling_port = free_port()
    ceiling_proc = start(
        [sys.executable, "-c", CEILING_APP, str(ceiling_port)], env, ceiling_port, "/graphql"
    )
    ceiling = (ceiling_port, lambda rng, i: (rankings_body, None, b"edges"), ceiling_proc.pid)
    try:
        run_scenarios(args, wanted, env, results, rankings_body, tokens, ids, ceiling)
        if not results:  # only the ceiling asked for
            measure("ceiling", ceiling_port, ceiling[1], args, results, pid=ceiling_proc.pid)
    finally:
        stop(ceiling_proc)
    ceiling_runs = results.pop("_ceiling_runs", [])
    if ceiling_runs:
        results = {"ceiling": summarize(ceiling_runs), **results}
    c = results["ceiling"]
    print(
        f"{'ceiling':14s} {c['rps']:8.1f} req/s (min {c['rps_min']:.1f}, max {c['rps_max']:.1f})"
        f"  over {max(len(ceiling_runs), args.repeat)} runs, each just before a scenario run"
        + (f"  server CPU {c['cpu_us']:.1f} us/req" if "cpu_us" in c else "")
    )
    report(args, results)


def run_scenarios(args, wanted, env, results, rankings_body, tokens, ids, ceiling) -> None:

    def serve(cache: bool) -> tuple[subprocess.Popen, int]:
        port = free_port()
        server_env = env | {"SUNRANK_PORT": str(port), "SUNRANK_CACHE_ENABLED": str(cache)}
        t0 = time.perf_counter()
        proc = start([sys.executable, "-m", "app", "serve"], server_env, port)
        print(f"server up (cache {'on' if cache else 'off'}) in {time.perf_counter() - t0:.1f} s")
        return proc, port

    default_body = rankings_body.replace(b"includeUnsafe: true, ", b"")
    video_bodies = [
        json.dumps({"query": VIDEO, "variables": {"id": yt}}).encode() for yt in ids[:200]
    ]

    def submit(rng: random.Random, i: int):
        a, b = rng.sample(ids, 2)
        body = {"query": SUBMIT, "variables": {"a": a, "b": b, "s": rng.randint(-10, 10)}}
        return json.dumps(body).encode(), tokens[i % len(tokens)], b'"userErrors":[]'

    warm = {
        "rankings_warm": lambda rng, i: (rankings_body, None, b"edges"),
        "video": lambda rng, i: (rng.choice(video_bodies), None, b"scores"),
        "submit": submit,
    }
    if wanted & set(warm):
        proc, port = serve(cache=True)
        try:
            for name, make in warm.items():
                if name in wanted:
                    measure(name, port, make, args, results, ceiling, proc.pid)
        finally:
            stop(proc)

    cold = {
        "rankings_cold": warm["rankings_warm"],
        "rankings_cold_default": lambda rng, i: (default_body, None, b"edges"),
    }
    if wanted & set(cold):
        proc, port = serve(cache=False)
        spy = None
        if args.profile:  # sample the server only: the load generator stays out of it
            runs = len(wanted & set(cold))  # each with the ceiling's run before it
            duration = int(runs * args.repeat * 2 * (args.seconds + 1.5)) + 1
            cmd = [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "-p",
                str(proc.pid),
                "-d",
                str(duration),
                "-f",
                "raw",
            ]
            spy = subprocess.Popen([*cmd, "-o", args.profile], stdout=subprocess.DEVNULL)
        try:
            for name, make in cold.items():
                if name in wanted:
                    measure(name, port, make, args, results, ceiling, proc.pid)
        finally:
            if spy is not None:
                spy.wait(timeout=120)
            stop(proc)


def report(args, results) -> None:
    results["ceiling"]["vs_ceiling"] = results["ceiling"]["cpu_vs_ceiling"] = 1.0
    for name, r in results.items():
        line = f"{name:14s} {100 * r['vs_ceiling']:6.1f} % of the ceiling"
        if "vs_ceiling_min" in r:
            line += f" (runs {100 * r['vs_ceiling_min']:.1f}..{100 * r['vs_ceiling_max']:.1f})"
        if "cpu_vs_ceiling_min" in r:
            line += (
                f"; by server CPU per request {100 * r['cpu_vs_ceiling']:.1f} % (runs "
                f"{100 * r['cpu_vs_ceiling_min']:.1f}..{100 * r['cpu_vs_ceiling_max']:.1f})"
            )
        print(line, flush=True)
    checks = {
        "rankings_warm_rps>=800": ("rankings_warm", lambda r: r["rps"] >= 800),
        "rankings_cold_rps>=200": ("rankings_cold", lambda r: r["rps"] >= 200),
        "rankings_cold>=6%_of_ceiling": ("rankings_cold", lambda r: r["vs_ceiling"] >= 0.06),
        "rankings_cold_default>=6%_of_ceiling": (
            "rankings_cold_default",
            lambda r: r["vs_ceiling"] >= 0.06,
        ),
        "rankings_warm_p99<=50ms": ("rankings_warm", lambda r: r["p99_ms"] <= 50),
        "rankings_cold_p99<=50ms": ("rankings_cold", lambda r: r["p99_ms"] <= 50),
        "submit_rps>=150": ("submit", lambda r: r["rps"] >= 150),
        "submit_p50<=15ms": ("submit", lambda r: r["p50_ms"] <= 15),
    }
    targets = {k: check(results[name]) for k, (name, check) in checks.items() if name in results}
    print(json.dumps({
        "bench": "api", "clients": args.clients, "seconds": args.seconds,
        "repeat": args.repeat, "dataset": TINY.name, "results": results, "targets_met": targets,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
