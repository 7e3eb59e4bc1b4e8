"""Learner quality: consistency, held-out accuracy, recovery, manipulation.

    .venv/bin/python bench/learner_quality.py                 # all four, defaults
    .venv/bin/python bench/learner_quality.py --parts b --grid  # λ/ν grid (held-out)

(a) consistency — fit the first 80 % of a dataset's comparison rows, stream the
    last 20 % through online updates only, compare with a full fit of everything:
    Spearman of global scores (target ≥ 0.99) and the largest gap (raw units).
(b) held-out accuracy — tiny_tournesol_2024-01, seeded 90/10 splits of the
    ``largely_recommended`` rows (``--seeds``, default 5: seeds 0-4; the peers kit's
    split, so the figures equal bench/learner_vs_peers.py's, which also runs the
    peers on the same rows); on held-out rows with score ≠ 0: sign accuracy (a
    predicted tie counts ½) and mean GBT log-likelihood, from personal scores (global
    where the contributor has not scored both videos) and from global scores only.
    Targets: Solidago 0.5's figures on the same splits (personal 0.8642, global
    0.8109, log-likelihood +0.049).

    Why we measure ~1.5 points below DESIGN.md's reference at the same λ, ν, δ
    (investigated, λ=0.3 ν=3 δ=0.5 C=3): the implementation is not the cause — an
    independent scipy L-BFGS solve of J on split 0 agrees with our fit to 1.1e-7 in
    ρ and 1.5e-5 in θ, and gives the same 0.8568 / 0.7955 (early-stopped L-BFGS
    iterates do not do better either). The data set has only 5 contributors (all
    trust 1) on this criterion, ~1,650 held-out rows: one split's accuracy has a
    standard deviation of ≈ 0.006; over 20 splits personal ranges 0.851..0.874
    (mean 0.8617), so one split is not enough to compare solvers, hence the
    multi-split mean. Protocol variants measured (5-8 splits, personal mean): split
    over comparisons (all criteria of a (u, a, b) together) 0.8637 vs rows 0.8621;
    per-video fallback (θ where scored, else ρ) +0.0006; n_uv over all criteria
    +0.0015; n_uv counted on the full data +0.0007; ties dropped from training
    −0.009; σ 3 / 20: −0.004 / +0.003; C 1 / 10: +0.002 / −0.001; all criteria's
    rows evaluated +0.003. None explains 1.5 points. One that over-explains it: θ
    shared across criteria with a row split (the held-out row's "importance" twin,
    same sign 91 % of the time, stays in training) gives 0.890 — a leak. Our
    protocol (per-criterion J, row split, fallback as the issue states) is kept; the
    reference's 87.5 % looks like a favourable single split and/or a leak.
(c) recovery — synthetic data with known true scores: Spearman(ρ, truth).
(d) manipulation — k fake accounts (trust w) compare one target video at
    +score_max against videos across the ranking; how far the target's global
    score and rank move, against the 2·k·λ·w/ν bound and against the plain mean of
    personal scores, with fakes at trust 0 and at trust 1.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict

import numpy as np
from _common import dataset, emit, load_tournesol, quiet_tf, spread, synthetic
from scipy.stats import spearmanr

quiet_tf()


def fit(cmp, ds, hp):
    from app.learner import Learner

    lr = Learner(hp)
    lr.load(cmp, ds.pretrust, ds.vouches)
    lr.fit()
    return lr


def part_a(hp, size):
    ds = dataset(size)
    cmp = ds.comparisons
    cut = int(0.8 * len(cmp))
    lr = fit(cmp[:cut], ds, hp)
    events = OrderedDict()  # one event per (user, pair): all its criteria at once
    for u, a, b, c, s, m in cmp[cut:].tolist():
        events.setdefault((u, a, b), {})[c] = (s, m)
    for (u, a, b), sc in events.items():
        prev = {c: v for c, v in sc.items()}
        lr.upsert_comparison(u, a, b, prev)
    full = fit(cmp, ds, hp)
    out = {}
    for c in sorted(set(cmp[:, 3].tolist())):
        i1, r1, *_ = lr.video_scores(c)
        i2, r2, *_ = full.video_scores(c)
        d1 = dict(zip(i1.tolist(), r1.tolist(), strict=True))
        x = np.array([d1[v] for v in i2.tolist()])
        out[c] = {
            "videos": len(i2),
            "spearman": float(spearmanr(x, r2).statistic),
            "max_gap": float(np.abs(x - r2).max()),
        }
    return {"size": size, "events": len(events), "per_criterion": out}


def part_b(hp, seeds=(0, 1, 2, 3, 4)):
    """Held-out accuracy over several seeded splits: mean, spread and each split."""
    from app.learner.scale import loglik

    ds = load_tournesol()
    cmp = ds.comparisons[ds.comparisons[:, 3] == 0]  # J's criteria are independent
    per = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        test = rng.random(len(cmp)) < 0.1
        lr = fit(cmp[~test], ds, hp)
        ev = cmp[test & (cmp[:, 4] != 0)]
        gids, graw, *_ = lr.video_scores(0)
        glob = dict(zip(gids.tolist(), graw.tolist(), strict=True))
        pers = {}
        res = {"personal": [0.0, 0.0], "global": [0.0, 0.0]}
        for u, a, b, _c, s, m in ev.tolist():
            if u not in pers:
                pers[u] = {v: t for v, c, t, _ in lr.contributor_scores(u) if c == 0}
            p = pers[u]
            ga, gb = glob.get(a, 0.0), glob.get(b, 0.0)
            dp = (p[b] - p[a]) if (a in p and b in p) else (gb - ga)
            for key, d in (("personal", dp), ("global", gb - ga)):
                res[key][0] += 0.5 if d == 0 else float(np.sign(d) == np.sign(s))
                res[key][1] += float(loglik(s / m, d))
        n = len(ev)
        per.append({
            "seed": seed, "heldout_rows": n,
            "personal_accuracy": res["personal"][0] / n, "global_accuracy": res["global"][0] / n,
            "personal_loglik": res["personal"][1] / n, "global_loglik": res["global"][1] / n,
        })  # fmt: skip
    out = {"seeds": list(seeds)}
    for k in ("personal_accuracy", "global_accuracy", "personal_loglik", "global_loglik"):
        xs = [p[k] for p in per]
        out[k] = float(np.mean(xs))
        out[k + "_spread"] = spread(xs)
    out["per_split"] = per
    return out


def part_c(hp, n_rows=20_000, seed=3):
    ds = synthetic(n_rows, seed=seed)
    lr = fit(ds.comparisons, ds, hp)
    ids, raw, *_ = lr.video_scores(0)
    return {"rows": n_rows, "spearman_truth": float(spearmanr(raw, ds.true_scores[ids]).statistic)}


def part_d(hp, k=40, n_rows=20_000, seed=4):
    from app.learner import Learner
    from app.learner.scale import squash

    ds = synthetic(n_rows, seed=seed)
    cmp = ds.comparisons
    base = fit(cmp, ds, hp)
    ids, raw, *_ = base.video_scores(0)
    order = np.argsort(raw)
    target = int(ids[order[len(order) // 10]])  # a video near the bottom decile
    others = ids[order[np.linspace(0, len(order) - 1, 30).astype(int)]]
    others = [int(v) for v in others if v != target]

    def rank_pct(i, r, v):
        return float(100.0 * (r < r[list(i).index(v)]).mean())

    def plain_mean(lr):
        m = {}
        for v, t in ((v, t) for u in lr.users.view("id").tolist()
                     for v, c, t, _ in lr.contributor_scores(u) if c == 0):  # fmt: skip
            m.setdefault(v, []).append(t)
        vs = np.array(list(m))
        return vs, np.array([np.mean(m[v]) for v in vs])

    pm_ids, pm = plain_mean(base)
    out = {
        "k": k,
        "target_before": float(raw[list(ids).index(target)]),
        "rank_pct_before": rank_pct(ids, raw, target),
        "plain_mean_rank_pct_before": rank_pct(pm_ids, pm, target),
    }
    fake0 = int(cmp[:, 0].max()) + 1000
    fakes = np.array(
        [(fake0 + f, o, target, 0, 10, 10) for f in range(k) for o in others], np.int64
    )
    for trust in (0.0, 1.0):
        lr = Learner(hp)
        pre = {**ds.pretrust, **{fake0 + f: trust for f in range(k)}}
        lr.load(np.vstack([cmp, fakes]), pre, ds.vouches)
        lr.fit()
        i2, r2, *_ = lr.video_scores(0)
        sl = lr._item_slots.get(lr._item[(lr._vid[target] << 4) | 0])
        fake = lr.slots.user[sl] >= lr._uid[fake0]
        w_fake = lr.slots.w[sl[fake]]
        p_ids, p_m = plain_mean(lr)
        after = float(r2[list(i2).index(target)])
        out[f"trust_{trust:g}"] = {
            "target_after": after,
            "move": after - out["target_before"],
            "bound_2klw_over_nu": hp.byzantine_bound(float(w_fake.sum())),
            "display_bound_vs_absence": hp.display_bound(float(w_fake.sum())),
            "fake_weight_sum_on_target": float(w_fake.sum()),
            "rank_pct_after": rank_pct(i2, r2, target),
            "plain_mean_rank_pct_after": rank_pct(p_ids, p_m, target),
            # Tournesol's "safe" rule, which default rankings apply: main display score
            # > 20 and the raters' trust summing to 1.5 (trust-0 fakes add nothing).
            "raters_trust_sum_after": lr.sum_trust(target, 0),
            "recommendable_after": bool(squash(after) > 20 and lr.sum_trust(target, 0) >= 1.5),
        }
    return out


def main() -> None:
    from app.learner import HParams

    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", default="abcd")
    ap.add_argument("--size", default="tiny", help="dataset for (a): tiny, 20k, 100k, 1m")
    ap.add_argument("--grid", action="store_true", help="(b) and (c) over a λ/ν grid")
    ap.add_argument("--lam", type=float)
    ap.add_argument("--nu", type=float)
    ap.add_argument("--delta", type=float)
    ap.add_argument("--C", type=float)
    ap.add_argument("--seeds", type=int, default=5, help="(b): number of seeded splits")
    args = ap.parse_args()
    hp = HParams()
    if args.lam is not None:
        hp = hp.with_(lam=args.lam)
    if args.nu is not None:
        hp = hp.with_(nu=args.nu)
    if args.delta is not None:
        hp = hp.with_(delta=args.delta)
    if args.C is not None:
        hp = hp.with_(C=args.C)
    seeds = tuple(range(args.seeds))
    out = {"hparams": {"lam": hp.lam, "nu": hp.nu, "delta": hp.delta, "C": hp.C, "sigma": hp.sigma}}
    if args.grid:
        grid = []
        for lam, nu in [(1, 10), (0.3, 3), (0.3, 1), (0.3, 0.3), (0.1, 1), (0.1, 0.3), (1, 0.1),
                        (0.2, 3), (0.5, 3)]:  # fmt: skip
            h = hp.with_(lam=lam, nu=nu)
            b = part_b(h, seeds)
            c = part_c(h) if "c" in args.parts else {}
            grid.append({"lam": lam, "nu": nu, **b, **c})
            print(f"λ={lam:<4} ν={nu:<4} personal {b['personal_accuracy']:.4f} global "
                  f"{b['global_accuracy']:.4f} loglik {b['personal_loglik']:.3f}/"
                  f"{b['global_loglik']:.3f} {c}", flush=True)  # fmt: skip
        out["grid"] = grid
        emit(out)
        return
    if "a" in args.parts:
        out["a_consistency"] = part_a(hp, args.size)
        print("(a)", out["a_consistency"], flush=True)
    if "b" in args.parts:
        out["b_heldout"] = part_b(hp, seeds)
        b = out["b_heldout"]
        pa, ga = b["personal_accuracy_spread"], b["global_accuracy_spread"]
        print(
            f"(b) personal {b['personal_accuracy']:.4f} (splits {pa['min']:.4f}..{pa['max']:.4f})"
            f" global {b['global_accuracy']:.4f} (splits {ga['min']:.4f}..{ga['max']:.4f})",
            flush=True,
        )
    if "c" in args.parts:
        out["c_recovery"] = part_c(hp)
        print("(c)", out["c_recovery"], flush=True)
    if "d" in args.parts:
        out["d_manipulation"] = part_d(hp)
        print("(d)", out["d_manipulation"], flush=True)
    emit(out)


if __name__ == "__main__":
    main()
