"""Live scores against a full fit of the same events, under a stream of comparisons.

    .venv/bin/python bench/_live_gap.py                        # 10/s for 5 min, every 10 s
    .venv/bin/python bench/_live_gap.py --seconds 60           # the short version
    .venv/bin/python bench/_live_gap.py --db /tmp/w1m/data/sunrank.sqlite3   # a prepared DB
    .venv/bin/python bench/_live_gap.py --restart              # + crash and restart

Protocol. A real ``LearnerService`` (its worker, its background refits and
housekeeping, as ``sunrank serve`` runs it) on a SQLite file holding the demo data
(tiny_tournesol_2024-01, what ``sunrank serve --demo`` loads) or a copy of ``--db``.
Comparisons arrive at ``--rate`` per second through the write path the API uses
(``writes.upsert_comparison`` then ``service.apply``): half from the dataset's
contributors, half from ``--new-users`` fresh accounts (trust 0), random pairs of
the dataset's videos, random scores, on the main criterion. Every ``--every``
seconds the stream pauses while the live display scores and the database's
inputs are captured at the same watermark; a fresh ``Learner`` is then fitted cold
from those inputs (what ``sunrank train`` does) on another thread while the stream
goes on, and the gap is the largest |live − full fit| over every (video,
criterion) display score. ``--restart``: after the stream, the service is abandoned
without a checkpoint (a kill -9: the newest checkpoint is the one housekeeping last
wrote), a new one starts (checkpoint + replay of the log), the stream resumes and
the gap is sampled every 2 s until it is back under 1 point.

Also reported (median / p90 / p99 / max): ``apply_ms``, each streamed comparison's
``service.apply`` (the online update, waiting behind a refit's swap included), and,
from the service's "refit swapped in" log lines, ``swap_ms`` (how long the swap held
the worker in all), ``hold_ms`` (the longest it held it at once: the replay runs in
slices), its parts ``adopt_ms`` (install + replay) and ``publish_ms`` (views of what
the replay moved), and ``replayed`` (events re-solved on top of the fit).
Note the reference fits run on another thread of the same process (the server has
none): they take CPU and the GIL from the worker, so these latencies are pessimistic.

``live_gap(**kw)`` returns the result dict (bench/learner_vs_peers.py calls it);
the script prints a table and one JSON line last.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import random
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from _common import TINY, emit, hparams_from, quiet_tf

quiet_tf()

MAIN = "largely_recommended"


def _display_scores(views: dict) -> dict[tuple[int, str], float]:
    return {(v, c): view.score for v, d in views.items() for c, view in d.items()}


def _reference(inputs: Any, hparams: Any) -> tuple[dict[tuple[int, str], float], float]:
    """Cold full fit of the inputs (``sunrank train``'s path): display scores, seconds.

    ``inputs``: the database's (``dbio.Inputs``), or a live learner's ``state()``
    (same events; θ and ρ are zeroed so the fit starts cold).
    """
    from app.criteria import CRITERION_NAMES
    from app.learner.model import Learner
    from app.learner.scale import squash

    t = time.perf_counter()
    if isinstance(inputs, dict):
        inputs["theta"][:] = 0.0
        inputs["rho"][:] = 0.0
        lr = Learner.from_state(hparams, inputs)
    else:
        lr = Learner(hparams)
        lr.load(inputs.comparisons, inputs.pretrust, inputs.vouches, inputs.private)
    lr.fit()
    out = {}
    for c, name in enumerate(CRITERION_NAMES):
        ids, raw, *_ = lr.video_scores(c)
        for v, x in zip(ids.tolist(), squash(raw).tolist(), strict=True):
            out[(v, name)] = x
    return out, time.perf_counter() - t


def _gap(live: dict, ref: dict) -> dict:
    keys = live.keys() & ref.keys()
    diffs = np.array([abs(live[k] - ref[k]) for k in keys]) if keys else np.zeros(1)
    main = [abs(live[k] - ref[k]) for k in keys if k[1] == MAIN]
    return {
        "max": float(diffs.max()),
        "over_1_point": int((diffs > 1.0).sum()),
        "max_main": float(max(main, default=0.0)),
        "missing": len(live.keys() ^ ref.keys()),
    }


class SwapLog(logging.Handler):
    """The fields of the service's "refit swapped in" log lines (swap_ms: how long
    the swap held the worker in all, hold_ms: at most at once; adopt_ms, publish_ms:
    its parts, where logged)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.swaps: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "refit swapped in":
            self.swaps.append(dict(getattr(record, "fields", {})))


def _dist(xs: list[float]) -> dict:
    if not xs:
        return {"n": 0}
    a = np.array(xs, dtype=float)
    return {
        "n": len(a), "p50": float(np.median(a)), "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)), "max": float(a.max()),
    }  # fmt: skip


def _freshness(service: Any) -> dict:
    if hasattr(service, "freshness"):
        return service.freshness()
    return {"events_since_refit": service._events_since_refit, "refits": None}  # older code


class Stream:
    """Comparisons at a steady rate through the API's write path."""

    def __init__(self, service: Any, users: list[int], videos: list[int], rate: float, seed: int):
        self.service, self.users, self.videos = service, users, videos
        self.period = 1.0 / rate
        self.rng = random.Random(seed)
        self.sent = 0
        self.next_at = time.monotonic()
        self.apply_ms: list[float] = []  # service.apply, waiting behind a refit's swap included

    async def one(self) -> None:
        from app.db import writes

        user = self.rng.choice(self.users)
        a, b = self.rng.sample(self.videos, 2)
        score = self.rng.randint(-10, 10)
        _, event = await writes.upsert_comparison(user, a, b, {MAIN: (score, 10)})
        if event is not None:
            t = time.perf_counter()
            await self.service.apply(event)
            self.apply_ms.append((time.perf_counter() - t) * 1e3)
        self.sent += 1

    async def run_for(self, seconds: float) -> None:
        """Send at the rate for ``seconds`` (catching up after a pause)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.next_at += self.period
            await self.one()
            await asyncio.sleep(max(0.0, self.next_at - time.monotonic()))


async def _sample(
    service: Any, pool: ThreadPoolExecutor, reference: str = "db"
) -> tuple[dict, asyncio.Future, dict]:
    """Live scores and the inputs at the same watermark (the stream is paused)."""
    from app.engine import dbio

    live = _display_scores(service._views)
    fresh = _freshness(service)
    if reference == "state":
        inputs: Any = await service._on_worker(service.learner.state)
    else:
        inputs = await dbio.load_inputs()
        assert inputs.watermark == service.watermark, "the stream must be paused while sampling"
    fut = asyncio.get_running_loop().run_in_executor(pool, _reference, inputs, service.hparams)
    return live, fut, fresh


async def _run(args: argparse.Namespace) -> dict:
    from app.config import load_settings
    from app.db import connection
    from app.db.models import Comparison, User, Video
    from app.engine.service import LearnerService

    work = Path(tempfile.mkdtemp(prefix="sunrank-live-gap-"))
    db_file = work / "data" / "sunrank.sqlite3"
    db_file.parent.mkdir(parents=True)
    if args.db:
        shutil.copy(args.db, db_file)
    if args.checkpoints:
        shutil.copytree(args.checkpoints, work / "data" / "checkpoints")
    db_url = f"sqlite://{db_file}"
    settings = load_settings({}, database_url=db_url, data_dir=work / "data")
    await connection.migrate(db_url)
    await connection.init(db_url)
    pool = ThreadPoolExecutor(1, thread_name_prefix="reference-fit")
    try:
        if not args.db:
            from app.datasets.importer import import_dataset
            from app.datasets.reader import read_dataset

            await import_dataset(read_dataset(Path(args.dataset)))
        users = list(await Comparison.all().distinct().values_list("user_id", flat=True))
        fresh_users = [
            (await User.create(username=f"livegap{k}_{time.time_ns()}")).id
            for k in range(args.new_users)
        ]
        videos = list(await Video.all().values_list("id", flat=True))
        rows = await Comparison.all().count()

        hparams = hparams_from(args.hparams)
        swap_log = SwapLog()
        learner_log = logging.getLogger("sunrank.learner")
        learner_log.addHandler(swap_log)
        learner_log.setLevel(logging.INFO)
        learner_log.propagate = False  # collected, not printed
        service = LearnerService(settings, hparams)
        t = time.perf_counter()
        await service.start()
        print(f"started in {time.perf_counter() - t:.1f} s: {service.learner.counts}", flush=True)
        gc.collect()  # as the server does once started (app/main.py): no full-heap
        gc.freeze()  # GC pauses of hundreds of ms under the stream
        # half the stream from the dataset's contributors, half from new accounts
        pool_users = users * max(1, len(fresh_users) // max(1, len(users))) + fresh_users
        stream = Stream(service, pool_users, videos, args.rate, args.seed)
        samples, pending = [], []
        started = time.monotonic()
        while time.monotonic() - started < args.seconds:
            await stream.run_for(args.every)
            live, fut, fresh = await _sample(service, pool, args.reference)
            pending.append((time.monotonic() - started, stream.sent, live, fut, fresh))
        for at, sent, live, fut, fresh in pending:
            ref, fit_s = await fut
            g = _gap(live, ref)
            samples.append({"t": round(at, 1), "sent": sent, **g, "fit_s": fit_s, **fresh})
            print(
                f"t={at:6.1f} s  sent {sent:5d}  gap max {g['max']:.3f}"
                f"  (main {g['max_main']:.3f})  >1pt {g['over_1_point']:3d}"
                f"  online since refit {fresh['events_since_refit']:3d}  refits {fresh['refits']}",
                flush=True,
            )
        result: dict[str, Any] = {
            "rows": rows,
            "rate_per_s": args.rate,
            "seconds": args.seconds,
            "sample_every_s": args.every,
            "sent": stream.sent,
            "refits": _freshness(service)["refits"],
            "gap_max": max(s["max"] for s in samples),
            "gap_median": statistics.median(s["max"] for s in samples),
            "samples_over_1": sum(s["max"] > 1.0 for s in samples),
            "samples": samples,
            "apply_ms": _dist(stream.apply_ms),
            **{
                f"{k}_ms": _dist([f[f"{k}_ms"] for f in swap_log.swaps if f"{k}_ms" in f])
                for k in ("swap", "hold", "adopt", "publish")
            },
            "replayed": _dist([f["events_since_snapshot"] for f in swap_log.swaps]),
        }
        if args.restart:  # abandons this service and stops the restarted one
            result["restart"] = await _restart(service, settings, stream, pool, args.reference)
        else:
            await service.stop()
        return result
    finally:
        pool.shutdown()
        await connection.close()
        shutil.rmtree(work, ignore_errors=True)


async def _restart(
    service: Any, settings: Any, stream: Stream, pool: ThreadPoolExecutor, reference: str
) -> dict:
    """kill -9 (no checkpoint, no flush), restart under the same stream, sample."""
    from app.engine.service import LearnerService

    for task in (service._background, getattr(service, "_refit_loop_task", None)):
        if task is not None:
            task.cancel()
    service._stopping.set()
    service._worker.shutdown(wait=True)
    service._refitter.shutdown(wait=True)
    since_checkpoint = service._events_since_checkpoint
    t = time.perf_counter()
    second = LearnerService(settings, service.hparams)
    await second.start()
    ready_s = time.perf_counter() - t
    stream.service = second
    stream.next_at = time.monotonic()
    out = []
    started = time.monotonic()
    while True:
        live, fut, fresh = await _sample(second, pool, reference)
        ref, _ = await fut
        g = _gap(live, ref)
        out.append({"t": round(time.monotonic() - started, 1), **g, **fresh})
        print(f"restart +{out[-1]['t']:5.1f} s  gap max {g['max']:.3f}  {fresh}", flush=True)
        if (g["max"] <= 1.0 and len(out) > 1) or time.monotonic() - started > 120:
            break
        await stream.run_for(2.0)
    await second.stop()
    return {
        "events_replayed": since_checkpoint,
        "ready_seconds": ready_s,
        "gap_at_ready": out[0]["max"],
        "seconds_to_under_1": next((s["t"] for s in out if s["max"] <= 1.0), None),
        "samples": out,
    }


def live_gap(
    *,
    seconds: float = 300.0,
    rate: float = 10.0,
    every: float = 10.0,
    new_users: int = 20,
    seed: int = 0,
    dataset: str | Path = TINY,
    db: str | Path | None = None,
    restart: bool = False,
    hparams: str | None = None,
    checkpoints: str | Path | None = None,
    reference: str = "db",
) -> dict:
    """Run the protocol (see the module doc) and return its result dict."""
    args = argparse.Namespace(
        seconds=seconds, rate=rate, every=every, new_users=new_users, seed=seed,
        dataset=str(dataset), db=str(db) if db else None, restart=restart, hparams=hparams,
        checkpoints=str(checkpoints) if checkpoints else None, reference=reference,
    )  # fmt: skip
    return asyncio.run(_run(args))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--rate", type=float, default=10.0, help="comparisons per second")
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--new-users", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset", default=str(TINY))
    ap.add_argument("--db", help="start from a copy of this SQLite database instead")
    ap.add_argument("--checkpoints", help="with --db: start from a copy of these checkpoints")
    ap.add_argument(
        "--reference", choices=("db", "state"), default="db",
        help="full fit of the database's inputs (sunrank train's path), or of a copy of the "
        "live learner's state (same events, no pause to read 1M rows)",
    )  # fmt: skip
    ap.add_argument("--restart", action="store_true", help="then kill -9 and restart")
    ap.add_argument("--hparams", help="HParams overrides, e.g. lam=1,C=3 (default: defaults)")
    args = ap.parse_args()
    res = asyncio.run(_run(args))
    print(
        f"{res['rows']} comparisons, {res['sent']} sent at {res['rate_per_s']}/s, "
        f"{len(res['samples'])} samples: gap max {res['gap_max']:.3f} display points, "
        f"median {res['gap_median']:.3f}, samples over 1 point: {res['samples_over_1']}; "
        f"refits {res['refits']}"
    )
    for key in ("apply_ms", "swap_ms", "hold_ms", "adopt_ms", "publish_ms", "replayed"):
        d = res[key]
        if d["n"]:
            print(
                f"{key:10s} n {d['n']:5d}  p50 {d['p50']:7.1f}  p90 {d['p90']:7.1f}  "
                f"p99 {d['p99']:7.1f}  max {d['max']:7.1f}"
            )
    if "restart" in res:
        r = res["restart"]
        print(
            f"after kill -9 + restart ({r['events_replayed']} events replayed): ready in "
            f"{r['ready_seconds']:.1f} s, gap at ready {r['gap_at_ready']:.3f}, back under 1 "
            f"point after {r['seconds_to_under_1']} s"
        )
    emit(res)


if __name__ == "__main__":
    main()
