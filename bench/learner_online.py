"""Online-update latency: per-comparison p50 / p99 with a fitted state loaded.

    .venv/bin/python bench/learner_online.py --size 1m --events 3000

Loads the synthetic state (``--size``: tiny, 20k, 100k, 1m), fits it, then applies
``--events`` comparison events drawn like the data (activity-weighted contributors,
popularity-weighted videos; 80 % new comparisons, 15 % edits of an existing one,
5 % deletions) and times each ``upsert_comparison`` / ``delete_comparison`` call
end to end (bookkeeping + voting rights + the tf.function). The first
``--warmup`` events (tracing) are not counted. Reports the trace count too: it
must not grow during the measured events. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import dataset, emit, peak_rss_mb, quiet_tf

quiet_tf()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1m")
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    from app.learner import HParams, Learner

    ds = dataset(args.size)
    lr = Learner(HParams())
    lr.load(ds.comparisons, ds.pretrust, ds.vouches)
    rep = lr.fit()
    print(f"state: {lr.counts}; fit {rep.seconds:.1f} s", flush=True)
    rng = np.random.default_rng(args.seed)
    cmp = ds.comparisons
    users, videos = cmp[:, 0], np.r_[cmp[:, 1], cmp[:, 2]]
    lat, kinds = [], []
    traces_after_warmup = None
    for k in range(args.warmup + args.events):
        if k == args.warmup:
            traces_after_warmup = lr.trace_count
        x = rng.random()
        if x < 0.8:
            u = int(users[rng.integers(len(users))])
            a, b = (int(v) for v in videos[rng.integers(len(videos), size=2)])
            if a == b:
                continue
            t = time.perf_counter()
            lr.upsert_comparison(u, a, b, {0: (int(rng.integers(-10, 11)), 10)})
            kind = "new"
        else:
            u, a, b = (int(v) for v in cmp[rng.integers(len(cmp)), :3])
            t = time.perf_counter()
            if x < 0.95:
                lr.upsert_comparison(u, a, b, {0: (int(rng.integers(-10, 11)), 10)})
                kind = "edit"
            else:
                lr.delete_comparison(u, a, b)
                kind = "delete"
        dt = time.perf_counter() - t
        if k >= args.warmup:
            lat.append(dt * 1e3)
            kinds.append(kind)
    lat = np.array(lat)
    res = {
        "size": args.size,
        "events": len(lat),
        "p50_ms": float(np.percentile(lat, 50)),
        "p90_ms": float(np.percentile(lat, 90)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
        "mean_ms": float(lat.mean()),
        "p50_ms_by_kind": {
            k: float(np.median(lat[np.array(kinds) == k])) for k in ("new", "edit", "delete")
        },
        "retraces_in_steady_state": lr.trace_count - traces_after_warmup,
        "peak_rss_mb": peak_rss_mb(),
    }
    print(
        f"{args.size}: {len(lat)} events | p50 {res['p50_ms']:.2f} ms | p90 {res['p90_ms']:.2f} "
        f"| p99 {res['p99_ms']:.2f} | max {res['max_ms']:.1f} ms | by kind {res['p50_ms_by_kind']}"
        f" | retraces {res['retraces_in_steady_state']} | peak RSS {res['peak_rss_mb']:.0f} MB"
    )
    emit(res)


if __name__ == "__main__":
    main()
