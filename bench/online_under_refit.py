"""Online-update latency alone and while background refits run, in the same process.

    .venv/bin/python bench/online_under_refit.py --events 400 --rounds 2

Each configuration runs in its own process, with the server's thread settings
(``app.learner.threads.configure(Settings().learner_threads)``): the demo data (tiny
Tournesol) is loaded and fitted, then ``--events`` comparison events are applied one
at a time on the main thread (the service's worker), ``--gap-ms`` apart, first with
no refit, then with refits back to back as ``app/engine/service.py`` runs them
(snapshot and adopt on the main thread, ``refit.fit`` + ``_moved_views`` on the
refit thread, a rest of ``REFIT_REST`` × its duration between two). Configurations,
alternated ``--rounds`` times (the machine is shared: compare within a run):

* ``nofreeze``: the heap as it is after loading and fitting;
* ``freeze``: ``gc.collect(); gc.freeze()`` after the warm-up, as the server does
  once started (``app/main.py``).

Without the freeze, the objects each refit allocates (score views, snapshots)
trigger full collections of the whole heap (TensorFlow's Python objects included)
that hold the GIL for ~0.6 s: that was the online update's p99 under refits. Each
configuration reports its generation-2 collections and the longest one.

Prints per configuration the median / p90 / p99 / max of an online update alone
and under refits, and the median refit duration; then, per configuration, the p99
under refits / p99 alone (1: refits do not slow online updates down), and each
figure as a ratio ``freeze`` / ``nofreeze``. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from _common import ROOT, dataset, emit, quiet_tf

quiet_tf()
CONFIGS = ("nofreeze", "freeze")


def _events(ds, n: int, seed: int):
    rng = np.random.default_rng(seed)
    cmp = ds.comparisons
    users, videos = cmp[:, 0], np.r_[cmp[:, 1], cmp[:, 2]]
    out = []
    while len(out) < n:
        u = int(users[rng.integers(len(users))])
        a, b = (int(v) for v in videos[rng.integers(len(videos), size=2)])
        if a != b:
            out.append((u, a, b, int(rng.integers(-10, 11))))
    return out


def child(config: str, n_events: int, gap_ms: float, seed: int) -> dict:
    from app.config import load_settings
    from app.learner.threads import configure

    configure(load_settings().learner_threads)
    from app.engine.service import REFIT_REST, _all_views, _moved_views
    from app.learner import HParams, Learner, refit
    from app.learner.fit import warm_up

    hp = HParams()
    ds = dataset("tiny")
    lr = Learner(hp)
    lr.load(ds.comparisons, ds.pretrust, ds.vouches)
    lr.fit()
    warm_up(hp)
    views, _ = _all_views(lr)
    events = _events(ds, 2 * n_events + 50, seed)

    def apply(k: int) -> float:
        u, a, b, s = events[k]
        t = time.perf_counter()
        lr.upsert_comparison(u, a, b, {0: (s, 10)})
        return (time.perf_counter() - t) * 1e3

    gc_pauses: list[tuple[int, float]] = []  # (generation, ms) of the collections
    gc_start = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_start[0] = time.perf_counter()
        else:
            gc_pauses.append((info["generation"], (time.perf_counter() - gc_start[0]) * 1e3))

    gc.callbacks.append(on_gc)
    for k in range(50):  # warm-up: traces, caches
        apply(k)
    if config == "freeze":  # as the server does once started (app/main.py)
        gc.collect()
        gc.freeze()
    gc_pauses.clear()
    alone = []
    for k in range(50, 50 + n_events):
        alone.append(apply(k))
        time.sleep(gap_ms / 1e3)

    gc_alone = list(gc_pauses)
    gc_pauses.clear()
    pool = ThreadPoolExecutor(1)
    refit_s: list[float] = []

    def fit(snap):
        t = time.perf_counter()
        res = refit.fit(hp, snap)
        moved = _moved_views(views, snap, res)
        return res, moved, time.perf_counter() - t

    under = []
    fut = None
    snap = None
    rest_until = 0.0
    for k in range(50 + n_events, 50 + 2 * n_events):
        now = time.perf_counter()
        if fut is None and now >= rest_until:
            snap = refit.snapshot(lr)
            fut = pool.submit(fit, snap)
        elif fut is not None and fut.done():
            res, _, dt = fut.result()
            refit.adopt(lr, snap, res)
            refit_s.append(dt)
            fut = None
            rest_until = time.perf_counter() + REFIT_REST * dt
        under.append(apply(k))
        time.sleep(gap_ms / 1e3)
    if fut is not None:
        fut.result()
    pool.shutdown()

    def stats(xs):
        xs = np.array(xs)
        return {
            "median": float(np.median(xs)),
            "p90": float(np.percentile(xs, 90)),
            "p99": float(np.percentile(xs, 99)),
            "max": float(xs.max()),
        }

    def gcs(xs):
        g2 = [ms for gen, ms in xs if gen == 2]
        return {"n": len(xs), "gen2": len(g2), "gen2_max_ms": max(g2, default=0.0)}

    return {
        "config": config,
        "gc_alone": gcs(gc_alone),
        "gc_under": gcs(gc_pauses),
        "events": n_events,
        "threads": threading.active_count(),
        "alone_ms": stats(alone),
        "under_refit_ms": stats(under),
        "refits": len(refit_s),
        "refit_s_median": float(np.median(refit_s)) if refit_s else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=600, help="measured events per phase")
    ap.add_argument("--gap-ms", type=float, default=5.0, help="pause between two events")
    ap.add_argument("--rounds", type=int, default=1, help="nofreeze/freeze pairs, alternated")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--child", choices=CONFIGS)
    args = ap.parse_args()
    if args.events < 10 or args.gap_ms < 0 or args.rounds < 1:
        raise SystemExit("--events must be ≥ 10, --gap-ms ≥ 0, --rounds ≥ 1")
    if args.child:
        emit(child(args.child, args.events, args.gap_ms, args.seed))
        return
    results: dict[str, list[dict]] = {c: [] for c in CONFIGS}
    for k in range(args.rounds):
        for config in CONFIGS if k % 2 == 0 else CONFIGS[::-1]:
            out = subprocess.run(
                [sys.executable, __file__, "--child", config, "--events", str(args.events),
                 "--gap-ms", str(args.gap_ms), "--seed", str(args.seed)],
                capture_output=True, text=True, check=True, cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )  # fmt: skip
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results[config].append(r)
            a, u = r["alone_ms"], r["under_refit_ms"]
            print(
                f"{config:8s} online alone p50 {a['median']:6.2f} p90 {a['p90']:6.2f} "
                f"p99 {a['p99']:6.1f} max {a['max']:6.1f} ms | under refits p50 "
                f"{u['median']:6.2f} p90 {u['p90']:6.2f} p99 {u['p99']:6.1f} max "
                f"{u['max']:6.1f} ms | {r['refits']} refits, median {r['refit_s_median']:.3f} s"
                f" | gen-2 GCs alone {r['gc_alone']['gen2']} (max "
                f"{r['gc_alone']['gen2_max_ms']:.0f} ms), under {r['gc_under']['gen2']} (max "
                f"{r['gc_under']['gen2_max_ms']:.0f} ms)",
                flush=True,
            )

    def med(config: str, *path: str) -> float:
        vals = []
        for r in results[config]:
            x = r
            for p in path:
                x = x[p]
            vals.append(x)
        return float(np.median(vals))

    keys = [
        ("online alone p50", ("alone_ms", "median")),
        ("online alone p99", ("alone_ms", "p99")),
        ("under refits p50", ("under_refit_ms", "median")),
        ("under refits p90", ("under_refit_ms", "p90")),
        ("under refits p99", ("under_refit_ms", "p99")),
        ("under refits max", ("under_refit_ms", "max")),
        ("refit duration", ("refit_s_median",)),
    ]
    ratios = {}
    print(f"freeze / nofreeze, medians over {args.rounds} round(s), {args.events} events each:")
    for label, path in keys:
        ratios[label] = med("freeze", *path) / med("nofreeze", *path)
        print(f"  {label:18s} {ratios[label]:.2f}")
    for config in CONFIGS:
        x = med(config, "under_refit_ms", "p99") / med(config, "alone_ms", "p99")
        ratios[f"{config}: p99 under refits / alone"] = x
        print(f"  {config:8s} p99 under refits / alone {x:.2f}")
    emit({"events": args.events, "gap_ms": args.gap_ms, "ratios": ratios, **results})


if __name__ == "__main__":
    main()
