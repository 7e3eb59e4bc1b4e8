"""Full-fit benchmark: time, Newton iterations, CG iterations, peak RSS.

    .venv/bin/python bench/learner_fit.py --sizes tiny,100k,1m --repeat 3

Sizes: ``tiny`` = tiny_tournesol_2024-01 (38k rows, all criteria in one problem);
``100k`` / ``1m`` = synthetic rows (bench/_common.synthetic: videos = rows/10,
contributors = rows/50, heavy-tailed activity and popularity). Each fit starts
cold (θ = ρ = 0) on a freshly loaded learner; TensorFlow import and the first
trace are excluded by a warm-up fit on a tiny problem. Peak RSS is the process
maximum after the size's fits. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import time

from _common import dataset, emit, peak_rss_mb, quiet_tf, spread

quiet_tf()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="tiny,100k,1m")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from app.learner import HParams, Learner

    hp = HParams()
    warm = Learner(hp)
    warm.load([(1, 1, 2, 0, 3, 10), (2, 2, 3, 0, -1, 10)], {1: 1.0})
    warm.fit()  # import + trace outside the timings

    out = {"tolerance_max_abs_grad": hp.fit_gtol, "sizes": {}}
    for name in args.sizes.split(","):
        ds = dataset(name)
        secs, iters, cgs, loads = [], [], [], []
        for _ in range(args.repeat):
            lr = Learner(hp)
            t = time.perf_counter()
            lr.load(ds.comparisons, ds.pretrust, ds.vouches)
            loads.append(time.perf_counter() - t)
            t = time.perf_counter()
            rep = lr.fit()
            secs.append(time.perf_counter() - t)
            iters.append(rep.iterations)
            cgs.append(rep.cg_iterations)
            assert rep.converged, rep
        res = {
            "rows": len(ds.comparisons),
            **lr.counts,
            "fit_seconds": spread(secs),
            "load_seconds": spread(loads),
            "newton_iterations": spread(iters),
            "cg_iterations": spread(cgs),
            "grad_norm": rep.grad_norm,
            "peak_rss_mb": peak_rss_mb(),
        }
        out["sizes"][name] = res
        print(
            f"{name:>5}: {res['rows']} rows, {res['slots']} slots, {res['items']} items | "
            f"fit median {res['fit_seconds']['median']:.2f} s "
            f"[{res['fit_seconds']['min']:.2f}, {res['fit_seconds']['max']:.2f}] | "
            f"load {res['load_seconds']['median']:.2f} s | Newton {iters} | CG {cgs} | "
            f"max|g| {rep.grad_norm:.1e} | peak RSS {res['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    emit(out)


if __name__ == "__main__":
    main()
