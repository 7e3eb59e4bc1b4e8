"""Online-update latency alone and while background refits run, before vs after.

    .venv/bin/python bench/online_under_refit.py --events 600

Each configuration runs in its own process (TensorFlow's thread pools are fixed once
it initialises): the demo data (tiny Tournesol) is loaded and fitted, then
``--events`` comparison events are applied one at a time on the main thread (the
service's worker), ``--gap-ms`` apart, first with no refit, then with refits back to
back on a second thread as ``app/engine/service.py`` runs them (snapshot and adopt
on the main thread, ``refit.fit`` + ``_moved_views`` on the refit thread, a rest of
``REFIT_REST`` × its duration between two). Configurations:

* ``before``: TensorFlow's default thread pools (one intra-op thread per core) and
  the per-item ``_moved_views`` (copied here);
* ``after``: ``app.learner.threads.configure(Settings().learner_threads)`` (the
  server's default, one intra-op thread) and the service's vectorised ``_moved_views``.

Prints per configuration the median / p90 / max of an online update alone and
under refits, and the median refit duration; then each as a ratio to ``before``.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
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


def _moved_views_per_item(published, snap, res):
    """``service._moved_views`` before it was vectorised (ScoreView.of per item)."""
    from app.criteria import CRITERION_NAMES as names
    from app.engine.service import VIEW_EPS, ScoreView

    vids, crits = snap.item_video_id.tolist(), snap.item_crit.tolist()
    views = [published.get(v, {}).get(names[c]) for v, c in zip(vids, crits, strict=True)]
    pub_raw = np.array([np.nan if x is None else x.raw for x in views])
    pub_unc = np.array([np.nan if x is None else x.raw_uncertainty for x in views])
    unc = 1.0 / np.sqrt(res.prec_rho)
    rated = snap.ncontrib > 0
    same = (np.abs(res.rho - pub_raw) <= VIEW_EPS) & (np.abs(unc - pub_unc) <= VIEW_EPS)
    moved = (rated & ~same) | (~rated & ~np.isnan(pub_raw))
    videos = np.unique(snap.item_video_id[moved])
    out = {int(v): {} for v in videos.tolist()}
    for i in np.flatnonzero(np.isin(snap.item_video_id, videos) & rated).tolist():
        c = crits[i]
        out[vids[i]][names[c]] = ScoreView.of(
            c, res.rho[i], unc[i], snap.ncontrib[i], snap.ncomp[i]
        )
    order = {name: k for k, name in enumerate(names)}
    return {v: dict(sorted(d.items(), key=lambda kv: order[kv[0]])) for v, d in out.items()}


def child(config: str, n_events: int, gap_ms: float, seed: int) -> dict:
    from app.config import load_settings

    if config == "after":
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

    for k in range(50):  # warm-up: traces, caches
        apply(k)
    alone = []
    for k in range(50, 50 + n_events):
        alone.append(apply(k))
        time.sleep(gap_ms / 1e3)

    pool = ThreadPoolExecutor(1)
    refit_s: list[float] = []

    def fit(snap):
        t = time.perf_counter()
        res = refit.fit(hp, snap)
        moved = (_moved_views if config == "after" else _moved_views_per_item)(views, snap, res)
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
            "max": float(xs.max()),
        }

    return {
        "config": config,
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
    ap.add_argument("--rounds", type=int, default=1, help="before/after pairs, interleaved")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--child", choices=("before", "after"))
    args = ap.parse_args()
    if args.events < 10 or args.gap_ms < 0 or args.rounds < 1:
        raise SystemExit("--events must be ≥ 10, --gap-ms ≥ 0, --rounds ≥ 1")
    if args.child:
        emit(child(args.child, args.events, args.gap_ms, args.seed))
        return
    results: dict[str, list[dict]] = {"before": [], "after": []}
    for _ in range(args.rounds):
        for config in ("before", "after"):
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
                f"{config:6s} online alone  p50 {a['median']:6.2f} p90 {a['p90']:6.2f} "
                f"max {a['max']:7.1f} ms | under refits p50 {u['median']:6.2f} "
                f"p90 {u['p90']:6.2f} max {u['max']:7.1f} ms | {r['refits']} refits, "
                f"median {r['refit_s_median']:.3f} s",
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
        ("online alone p90", ("alone_ms", "p90")),
        ("under refits p50", ("under_refit_ms", "median")),
        ("under refits p90", ("under_refit_ms", "p90")),
        ("under refits max", ("under_refit_ms", "max")),
        ("refit duration", ("refit_s_median",)),
    ]
    ratios = {}
    print(f"after / before, medians over {args.rounds} round(s), {args.events} events each:")
    for label, path in keys:
        ratios[label] = med("after", *path) / med("before", *path)
        print(f"  {label:18s} {ratios[label]:.2f}")
    emit({"events": args.events, "gap_ms": args.gap_ms, "ratios": ratios, **results})


if __name__ == "__main__":
    main()
