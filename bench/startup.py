"""Startup and first-request latency of a real ``sunrank serve`` over HTTP.

    .venv/bin/python bench/startup.py --size demo --runs 3
    .venv/bin/python bench/startup.py --size 1m --runs 2 --workdir /tmp/sunrank-1m   # reusable

Protocol, each run a fresh ``sunrank serve`` process on the same SQLite database:

1. ``cold``: no checkpoint; process start → ``/readyz`` 200 (full fit from the
   database), then SIGTERM (a checkpoint is written at shutdown).
2. ``--runs`` times, with the checkpoint: process start → ``/readyz`` 200; then one
   fresh account submits ``--comparisons`` comparisons one after another (random
   pairs of the dataset's videos, a new pair each time) and each ``submitComparison``
   is timed from the client: the first against the median of the last ten (the
   "hundredth"), and against a second fresh account's first comparison made after
   them (the first one is a newcomer's too: a new contributor costs the learner a
   little more, in any process); then the process is stopped with SIGTERM
   (checkpoint again).
3. The cost of the first full fit in a process (tracing included) is read from the
   server's log: the startup fit of ``cold``, and the first background refit of
   each run (``refit swapped in ... fit_seconds=``) when one happened within
   ``--refit-wait`` seconds of the last comparison.

Measured (2 cores, quiet machine, ``--size demo --runs 3 --skip-cold``), before →
after tracing the full fit in the warm-up (autograph off) and warming the online
solver on a real small problem: first refit in the process 1.13–1.21 s → 0.035–0.064 s;
first ``submitComparison`` median 31.5 ms [30.1, 36.5] → 22.9 ms [19.3, 23.5], its
learner apply 12 ms → 6.5–9.9 ms (the steady state's); the hundredth 9.7 → 10.4 ms;
``/readyz`` 5.7 → 6.0 s. At 1M rows the first minutes after a start are dominated by
the public-dataset export build (app/datasets), which reads every comparison on the
event loop: ~0.8–2 s per request until it finishes.

At 1M rows (976,745 comparisons, 95,878 videos; ``--size 1m --runs 2`` under
``nice -n 15`` beside another benchmark, so upper bounds): cold start to ``/readyz``
105.5 s, of which the fit is 10.9 s and most of the rest writing every score to the
database (``flush_scores`` at the first checkpoint, ORM objects built on the event
loop); from a checkpoint 16.7 and 21.0 s; first ``submitComparison`` 281 and 365 ms
against a hundredth of 71 and 85 ms; first refit 1.05 and 8.5 s. The first event
reallocated every learner table (loaded at exact size); with a quarter of headroom
(app/learner/store.py), ``--skip-cold``, same load: first 100 and 104 ms against 62
and 52 ms (×1.8: the first event also starts a background refit whose CPU the
online update shares); ready 19.4 and 19.6 s.

Later, on a quiet machine (``--size 1m --runs 3``): scores written as plain rows,
cold start 58.4 → 46.7 s (fit 8.1 s, writing the scores 24 s); a checkpoint that is
a full fit needs no refit at restart: first 31.7 ms against a hundredth of 36.6 ms
(before: 47.5 against 11.7, beside a refit of 0.6 s that found nothing to do). From
a checkpoint holding online drift the refit runs at once, beside the first requests:
first 61-78 ms against 35-42 ms (``--skip-cold``). A newcomer's first comparison
after the hundred took 575 ms twice out of three, waiting for a refit's swap that
held the worker 0.6-0.8 s; with the replay in slices, 43-44 ms (longest hold 106 ms).
At the demo size (``--runs 5 --skip-cold``): first 17-19 ms, hundredth 11-14 ms, a
newcomer's first in the warm process 13-15 ms.

Sizes: ``demo`` = tiny_tournesol_2024-01 (what ``sunrank serve --demo`` loads),
``1m`` = bench/_common's synthetic 1M rows written as a Tournesol dataset and
imported. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import ROOT, TINY, dataset, emit, spread

PASSWORD = "a long enough password"
REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { userErrors { message } } }"
LOGIN = "mutation($i: CredentialsInput!) { login(input: $i) { token userErrors { message } } }"
SUBMIT = (
    "mutation($i: SubmitComparisonInput!) { submitComparison(input: $i) {"
    " comparison { id } userErrors { code message } } }"
)
REFIT_LINE = re.compile(r"refit swapped in .*?fit_seconds=([0-9.]+)")
FULL_FIT_LINE = re.compile(r"full fit: FitReport\(.*?seconds=([0-9.]+)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUNRANK_")}
    env.update(
        SUNRANK_DATA_DIR=str(workdir / "data"),
        SUNRANK_RATE_LIMIT_PER_MINUTE="1000000",
        SUNRANK_RATE_LIMIT_PER_IP_PER_MINUTE="1000000",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    return env


def _cli(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "app", *args], env=env, cwd=ROOT, check=True)


def _write_synthetic(name: str, folder: Path) -> None:
    """bench/_common's synthetic dataset in Tournesol's CSV format."""
    from app.criteria import CRITERION_NAMES

    ds = dataset(name)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "comparisons.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["public_username", "video_a", "video_b", "criteria", "score", "score_max"])
        for u, a, b, c, s, m in ds.comparisons.tolist():
            w.writerow([f"user{u}", f"v{a:010d}", f"v{b:010d}", CRITERION_NAMES[c], s, m])
    with open(folder / "users.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["public_username", "trust_score"])
        users = {int(u) for u in ds.comparisons[:, 0].tolist()}
        for u in sorted(users):
            w.writerow([f"user{u}", ds.pretrust.get(u, 0.0)])
    with open(folder / "vouchers.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["by_username", "to_username", "value"])
        for x, y in ds.vouches:
            w.writerow([f"user{x}", f"user{y}", 1])


def prepare(size: str, workdir: Path, env: dict) -> None:
    marker = workdir / f"prepared-{size}"
    if marker.exists():
        return
    source = TINY
    if size != "demo":
        source = workdir / "dataset"
        _write_synthetic(size, source)
    t = time.perf_counter()
    _cli(env, "migrate")
    _cli(env, "import-tournesol", str(source), "--quiet")
    print(f"prepared {size} in {time.perf_counter() - t:.1f} s", flush=True)
    marker.touch()


class Server:
    """One ``sunrank serve`` process; its combined output goes to a log file."""

    def __init__(self, env: dict, log_path: Path):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 (closed in stop)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve"], env={**env, "SUNRANK_PORT": str(self.port)},
            cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 1800) -> float:
        """Seconds from process start to the first ``/readyz`` 200."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=5).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server not ready in time")
            time.sleep(0.02)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=600)
        self._log.close()


def _gql(client: httpx.Client, query: str, variables: dict, token: str | None = None) -> dict:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    body = client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    data = body.json()
    if data.get("errors"):
        raise SystemExit(f"GraphQL error: {data['errors']}")
    return data["data"]


def submit_series(base: str, username: str, youtube_ids: list[str], n: int, seed: int) -> list:
    """Register ``username``, then time ``n`` sequential submitComparison calls (ms)."""
    rng = random.Random(seed)
    creds = {"i": {"username": username, "password": PASSWORD}}
    out = []
    with httpx.Client(base_url=base, timeout=120) as client:
        _gql(client, REGISTER, creds)
        token = _gql(client, LOGIN, creds)["login"]["token"]
        seen: set[frozenset] = set()
        while len(out) < n:
            a, b = rng.sample(youtube_ids, 2)
            if frozenset((a, b)) in seen:
                continue
            seen.add(frozenset((a, b)))
            variables = {"i": {"videoA": a, "videoB": b, "scores": [
                {"criterion": "largely_recommended", "score": rng.randint(-10, 10)}]}}  # fmt: skip
            t = time.perf_counter()
            result = _gql(client, SUBMIT, variables, token)["submitComparison"]
            out.append((time.perf_counter() - t) * 1e3)
            if result["userErrors"]:
                raise SystemExit(f"submitComparison refused: {result['userErrors']}")
    return out


def _first_refit_seconds(server: Server, wait: float) -> float | None:
    deadline = time.monotonic() + wait
    while True:
        m = REFIT_LINE.search(server.log())
        if m or time.monotonic() > deadline:
            return float(m.group(1)) if m else None
        time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="demo", help="demo, or a bench/_common size (20k, 1m)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--comparisons", type=int, default=100)
    ap.add_argument("--refit-wait", type=float, default=30.0)
    ap.add_argument("--workdir", help="reuse this directory (the import is the slow part)")
    ap.add_argument(
        "--skip-cold", action="store_true",
        help="keep the workdir's checkpoint: no cold start (its figures are not reported)",
    )  # fmt: skip
    args = ap.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix=f"sunrank-startup-{args.size}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = _env(workdir)
    prepare(args.size, workdir, env)
    db = workdir / "data" / "sunrank.sqlite3"
    with sqlite3.connect(db) as conn:
        youtube_ids = [r[0] for r in conn.execute("SELECT youtube_id FROM video")]
        n_rows = conn.execute("SELECT count(*) FROM comparison_score").fetchone()[0]

    cold_ready = cold_fit = None
    if not args.skip_cold:
        for ckpt in (workdir / "data" / "checkpoints").glob("ckpt-*"):
            for f in sorted(ckpt.rglob("*"), reverse=True):
                f.unlink() if f.is_file() else f.rmdir()
            ckpt.rmdir()
        server = Server(env, workdir / "cold.log")
        cold_ready = server.wait_ready()
        server.stop()
        m = FULL_FIT_LINE.search(server.log_path.read_text())
        cold_fit = float(m.group(1)) if m else None
        print(f"cold start (no checkpoint): ready in {cold_ready:.2f} s, startup fit {cold_fit} s")

    ready, first, hundredth, newcomer, refits = [], [], [], [], []
    for run in range(args.runs):
        server = Server(env, workdir / f"run{run}.log")
        ready.append(server.wait_ready())
        try:
            lat = submit_series(server.base, f"bench{time.time_ns()}", youtube_ids,
                                args.comparisons, run)  # fmt: skip
            # a newcomer's first comparison in the warm process: what the first one
            # after /readyz (also a newcomer's) should cost
            (late,) = submit_series(
                server.base, f"late{time.time_ns()}", youtube_ids, 1, 1000 + run
            )
            refit = _first_refit_seconds(server, args.refit_wait)
        finally:
            server.stop()
        first.append(lat[0])
        hundredth.append(statistics.median(lat[-10:]))
        newcomer.append(late)
        if refit is not None:
            refits.append(refit)
        print(
            f"run {run}: ready {ready[-1]:.2f} s | submitComparison first {lat[0]:.1f} ms, "
            f"2nd {lat[1]:.1f} ms, median of the last 10 {hundredth[-1]:.1f} ms, a newcomer's "
            f"first after them {late:.1f} ms | "
            f"first refit in the process: {refit if refit is not None else 'none'} s",
            flush=True,
        )
    res = {
        "size": args.size,
        "rows": n_rows,
        "videos": len(youtube_ids),
        "cold_ready_seconds": cold_ready,
        "cold_startup_fit_seconds": cold_fit,
        "ready_seconds": spread(ready),
        "first_comparison_ms": spread(first),
        "hundredth_comparison_ms": spread(hundredth),
        "first_over_hundredth": statistics.median(first) / statistics.median(hundredth),
        "newcomer_later_ms": spread(newcomer),
        "first_over_newcomer_later": statistics.median(first) / statistics.median(newcomer),
        "first_refit_seconds": spread(refits) if refits else None,
    }
    print(
        f"{args.size} ({n_rows} rows): ready with checkpoint median "
        f"{res['ready_seconds']['median']:.2f} s [{min(ready):.2f}, {max(ready):.2f}] "
        f"(cold, no checkpoint: {cold_ready} s) | "
        f"first submitComparison {statistics.median(first):.1f} ms vs hundredth "
        f"{statistics.median(hundredth):.1f} ms (×{res['first_over_hundredth']:.2f}), vs a "
        f"newcomer's first in the warm process {statistics.median(newcomer):.1f} ms "
        f"(×{res['first_over_newcomer_later']:.2f})"
    )
    emit(res)


if __name__ == "__main__":
    main()
