"""Sunrank's learner against Tournesol's pipeline (Solidago 0.5) and choix, in one run.

    .venv/bin/python bench/learner_vs_peers.py                     # everything
    .venv/bin/python bench/learner_vs_peers.py --parts heldout,attacks --solidago run

Peers come from the peers kit (``../shared/peers``: heldout.py, synth.py, score.py,
run_peer.py), run with its own interpreter (``--peers-python``, Python 3.13 with
solidago 0.5, choix, pandas; see the kit's README). Nothing of the kit is imported
into this process: it runs as subprocesses, and its outputs are cached under
``--cache`` (default ``$SUNRANK_PEERS_CACHE`` or /tmp/sunrank-peers, never in git).

Parts (``--parts``, comma-separated; default all):

``heldout``  tiny_tournesol_2024-01, both ``largely_recommended`` and ``importance``,
    seeds 0-4: the kit's own split (``heldout.load`` + ``heldout.split``, 10 % of one
    criterion's rows) and its own ``heldout.evaluate()`` on Sunrank's scores, so the
    rows are identical to the peers' (paired). Sunrank fits the train rows with the
    dataset's trust (all 5 contributors: 1); Solidago runs TrustAll as in the kit.
    Solidago takes minutes per fit: its outputs are cached; ``--solidago run`` runs
    the missing ones, ``cached`` (default) uses what the cache has and quotes the
    kit's recorded means otherwise. choix (ILSR graded, α = 0.01) is quick but dense
    (6k videos): same policy (``--choix``).
    Calibration (Sunrank only; rows with a non-zero score where the contributor scored
    both videos): ``k*``, the stretch k maximising the mean GBT log-likelihood of r
    given k·d (1 = calibrated; > 1 under-confident differences), and ``coverage``,
    the share of rows whose outcome falls in the central 68.3 % interval of the
    posterior predictive p(r) = ∫ GBT(r | δ) N(δ; d, s²) dδ, s² the sum of the two
    personal scores' Laplace variances (randomised PIT for the 0.1-step scores), and
    the same with s = 0 (``coverage_s0``): what the GBT noise alone gives.
``calibration``  the same calibration figures where the GBT noise model is exact:
    synthetic M (synth.py draws the 21-level GBT), 10 % of its rows held out
    (``default_rng(0)``). ``kappa`` (here and in ``heldout``) is the scale of the
    uncertainties that would make the coverage 0.683, None when none in [0, 4] does.
``recovery``  synthetic S, M, L (synth.py, the kit's RESULTS.md flags, seed 0) with
    its pretrust (0.8 for the pretrusted) and vouches: Spearman with the truth by
    score.py. Peers: RESULTS.md's best figures (choix takes minutes and GBs at L).
``attacks``  S-adv and M-adv (40 trust-0 Sybils pushing a 20th-percentile video):
    target percentile clean → attacked, by score.py with ``--baseline``.
``api``  the demo data through the real API: ``sunrank serve --demo`` in a temporary
    directory; a freshly registered account submits 3 comparisons against the safe
    video with the lowest score; then 40 fresh accounts each submit 5 comparisons
    against the #1 video. Reported: display moves, safe status, the top 5.
``live``  the live-vs-full gap: ``bench/_live_gap.py``'s protocol (a real
    LearnerService on the demo data, 10 comparisons/s for ``--live-seconds``, default
    300, sampled every 10 s against a cold full fit of the same events).

Prints one table, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import hparams_from, load_tournesol, quiet_tf

quiet_tf()

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "data" / "tournesol" / "tiny_tournesol_2024-01"
KIT = ROOT.parent / "shared" / "peers"
CRITERIA = ("largely_recommended", "importance")
SYNTH = {  # RESULTS.md's flags, seed 0
    "S": "--videos 200 --users 50 --comparisons 1000 --criteria 3",
    "M": "--videos 2000 --users 400 --comparisons 20000 --criteria 1",
    "L": "--videos 10000 --users 2000 --comparisons 200000 --criteria 1",
    "S-adv": "--videos 200 --users 50 --comparisons 1000 --criteria 3 "
    "--adversarial 0.1 --adv-comparisons 20",
    "M-adv": "--videos 2000 --users 400 --comparisons 20000 --criteria 1 "
    "--adversarial 0.1 --adv-comparisons 20",
}
# Peers' recorded figures (../shared/peers/README.md and RESULTS.md), quoted when not run
RECORDED_HELDOUT = {
    ("solidago", "largely_recommended"): {
        "acc_personal": 0.8642, "acc_global": 0.8109, "mean_ll": 0.049},
    ("solidago", "importance"): {"acc_personal": 0.8611, "acc_global": 0.8204, "mean_ll": 0.014},
    ("choix", "largely_recommended"): {"acc_personal": 0.7793, "acc_global": 0.7793},
}  # fmt: skip
RECORDED_RECOVERY = {  # best peer (choix ILSR graded, tuned α) per data set, criterion 0
    "S": ("choix-ilsr-graded α=0.01", 0.8781),
    "M": ("choix-ilsr-graded α=5e-4", 0.9173),
    "L": ("choix-ilsr-graded α=1e-4", 0.9604),
}
RECORDED_ATTACKS = {  # solidago + LipschiTrust: target percentile clean → attacked
    "S-adv": (26.6, 39.9),
    "M-adv": (12.4, 38.7),
}
TARGETS = {"M-adv": 35.0, "S-adv": 40.0}
UNTRUSTED_BOUND = 2.5  # display points: HParams().display_bound(untrusted_budget)

SPLIT = r"""
import sys
sys.path.insert(0, sys.argv[1])
import heldout
for crit in sys.argv[4].split(","):
    df = heldout.load(sys.argv[2], crit)
    for seed in map(int, sys.argv[5].split(",")):
        train, test = heldout.split(df, 0.1, seed)
        cols = ["public_username", "video_a", "video_b", "score", "r"]
        train[cols].to_csv(f"{sys.argv[3]}/{crit}.{seed}.train.csv", index=False)
        test[cols].to_csv(f"{sys.argv[3]}/{crit}.{seed}.test.csv", index=False)
"""
EVALUATE = r"""
import json, sys
import pandas as pd
sys.path.insert(0, sys.argv[1])
import heldout
for path in sys.argv[2:]:
    s = json.load(open(path))
    test = pd.read_csv(s["test"])
    personal = {(u, v): x for u, v, x in s["personal"]}
    global_ = {v: x for v, x in s["global"]}
    print(json.dumps({"path": path, **heldout.evaluate(test, personal, global_)}))
"""


# --------------------------------------------------------------------------- peers kit
class Kit:
    def __init__(self, python: str, cache: Path):
        self.python, self.cache = python, cache
        for sub in ("heldout", "split", "data", "runs"):
            (cache / sub).mkdir(parents=True, exist_ok=True)

    def run(self, args: list[str], timeout: float = 3600) -> str:
        out = subprocess.run(
            [self.python, *args], capture_output=True, text=True, timeout=timeout,
            cwd=self.cache, env={**os.environ, "PYTHONPATH": str(KIT)},
        )  # fmt: skip
        if out.returncode:
            raise RuntimeError(f"peers kit failed: {' '.join(args[:3])}\n{out.stderr[-2000:]}")
        return out.stdout

    def split(self, seeds) -> Path:
        d = self.cache / "split"
        need = [f"{c}.{s}.test.csv" for c in CRITERIA for s in seeds]
        if not all((d / n).exists() for n in need):
            self.run(["-c", SPLIT, str(KIT), str(TINY), str(d), ",".join(CRITERIA),
                      ",".join(map(str, seeds))])  # fmt: skip
        return d

    def heldout_peer(self, method: str, crit: str, seed: int, policy: str) -> dict | None:
        """The kit's heldout.py for one peer: cached JSON, run if ``policy == 'run'``."""
        f = self.cache / "heldout" / f"{method}.{crit}.{seed}.json"
        if f.exists() and f.stat().st_size:
            return json.loads(f.read_text().strip().splitlines()[-1])
        if policy != "run":
            return None
        out = self.run([str(KIT / "heldout.py"), str(TINY), "--criterion", crit,
                        "--seed", str(seed), "--method", method])  # fmt: skip
        f.write_text(out)
        return json.loads(out.strip().splitlines()[-1])

    def synth(self, name: str) -> Path:
        prefix = self.cache / "data" / name
        if not Path(f"{prefix}.truth.csv").exists():
            self.run([str(KIT / "synth.py"), *SYNTH[name].split(), "--seed", "0",
                      "--out", str(prefix)])  # fmt: skip
        return prefix

    def score(self, truth: Path, out: Path, baseline: Path | None = None) -> list[dict]:
        args = [str(KIT / "score.py"), str(truth), str(out), "--json"]
        if baseline is not None:
            args += ["--baseline", str(baseline)]
        return json.loads(self.run(args).strip().splitlines()[-1])


# --------------------------------------------------------------------------- held-out
def pit_coverage(r, d, s, seed=0) -> float:
    """Share of outcomes inside the central 68.3 % posterior-predictive interval."""
    from app.learner.scale import predictive_coverage

    return predictive_coverage(r, d, s, seed=seed)


NOMINAL = 0.682689  # P(|Z| ≤ 1)


def calibrating_scale(r, d, s) -> float | None:
    """κ for which the predictive with κ·s covers NOMINAL of the outcomes, None if no
    κ in [0, 4] does (coverage only grows with κ; if κ = 0 already over-covers, it is
    the GBT noise, not the uncertainty, that is too wide)."""
    grid = np.linspace(0.0, 4.0, 81)
    cov = np.array([pit_coverage(r, d, k * s) for k in grid])
    if cov[0] > NOMINAL or cov[-1] < NOMINAL:
        return None
    return float(grid[np.argmin(np.abs(cov - NOMINAL))])


def best_stretch(r, d) -> float:
    from app.learner.scale import loglik

    ks = np.linspace(0.5, 2.5, 81)
    return float(ks[np.argmax([loglik(r, k * d).mean() for k in ks])])


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def sunrank_heldout(split_dir: Path, crit: str, seed: int, out_dir: Path, hp) -> tuple[Path, dict]:
    """Fit the train rows; write the scores for heldout.evaluate; calibration figures."""
    from app.learner import Learner

    ds = load_tournesol(TINY)  # usernames / video ids → ints, pretrust, vouches
    users, videos = ds.users, ds.videos
    train = read_rows(split_dir / f"{crit}.{seed}.train.csv")
    rows = np.array(
        [(users[t["public_username"]], videos[t["video_a"]], videos[t["video_b"]], 0,
          int(float(t["score"])), 10) for t in train], np.int64,
    )  # fmt: skip
    lr = Learner(hp)
    lr.load(rows, ds.pretrust, ds.vouches)
    t0 = time.perf_counter()
    lr.fit()
    fit_s = time.perf_counter() - t0
    name_of_user = {i: n for n, i in users.items()}
    name_of_video = {i: n for n, i in videos.items()}
    personal, unc = [], {}
    for u in lr.user_ids():
        for v, _c, theta, s in lr.contributor_scores(u):
            personal.append((name_of_user[u], name_of_video[v], theta))
            unc[(name_of_user[u], name_of_video[v])] = (theta, s)
    ids, raw, *_ = lr.video_scores(0)
    glob = [(name_of_video[v], x) for v, x in zip(ids.tolist(), raw.tolist(), strict=True)]
    path = out_dir / f"sunrank.{crit}.{seed}.json"
    test_path = split_dir / f"{crit}.{seed}.test.csv"
    path.write_text(json.dumps({"test": str(test_path), "personal": personal, "global": glob}))
    d, s, r = [], [], []
    for t in read_rows(test_path):
        ra = float(t["r"])
        a, b = (
            unc.get((t["public_username"], t["video_a"])),
            unc.get((t["public_username"], t["video_b"])),
        )
        if ra != 0 and a and b:
            d.append(b[0] - a[0])
            s.append(float(np.hypot(a[1], b[1])))
            r.append(ra)
    d, s, r = np.array(d), np.array(s), np.array(r)
    calib = {
        "fit_s": round(fit_s, 2),
        "calib_rows": len(r),
        "k_star": best_stretch(r, d),
        "coverage": pit_coverage(r, d, s),
        "coverage_s0": pit_coverage(r, d, np.zeros_like(s)),
        "kappa": calibrating_scale(r, d, s),
        "median_sd": float(np.median(s)) if len(s) else float("nan"),
    }
    return path, calib


def part_heldout(kit: Kit, hp, seeds, solidago: str, choix: str) -> dict:
    split_dir = kit.split(seeds)
    out_dir = Path(tempfile.mkdtemp(prefix="sunrank-heldout-"))
    paths, calib = [], {}
    for crit in CRITERIA:
        for seed in seeds:
            p, c = sunrank_heldout(split_dir, crit, seed, out_dir, hp)
            paths.append(p)
            calib[(crit, seed)] = c
    evals = [json.loads(line) for line in kit.run(["-c", EVALUATE, str(KIT), *map(str, paths)])
             .strip().splitlines()]  # fmt: skip
    result: dict = {}
    for crit in CRITERIA:
        per = []
        for seed in seeds:
            e = next(x for x in evals if x["path"].endswith(f"sunrank.{crit}.{seed}.json"))
            row = {
                "seed": seed,
                "n": e["n"],
                "sunrank": {k: e[k] for k in ("acc_personal", "acc_global", "mean_ll")}
                | calib[(crit, seed)],
            }
            for method, policy in (("solidago", solidago), ("choix", choix)):
                got = kit.heldout_peer(method, crit, seed, policy)
                if got is not None:
                    assert got["n"] == e["n"], "the peers' held-out rows differ"
                    row[method] = {k: got[k] for k in ("acc_personal", "acc_global", "mean_ll")}
            per.append(row)
        summary: dict = {"per_seed": per}
        for who in ("sunrank", "solidago", "choix"):
            got = [p[who] for p in per if who in p]
            if len(got) == len(seeds):
                summary[who] = {
                    k: float(np.mean([g[k] for g in got]))
                    for k in got[0]
                    if all(isinstance(g[k], int | float) for g in got)
                }
                if who == "sunrank":  # None where no scale reaches nominal
                    summary[who]["kappa"] = [g["kappa"] for g in got]
                summary[who]["source"] = "measured, paired"
            elif (who, crit) in RECORDED_HELDOUT:
                source = f"recorded ({len(got)}/{len(seeds)} splits cached)"
                summary[who] = {**RECORDED_HELDOUT[(who, crit)], "source": source}
        if "solidago" in summary and summary["solidago"]["source"].startswith("measured"):
            summary["paired_wins_vs_solidago"] = {
                k: sum(p["sunrank"][k] >= p["solidago"][k] for p in per)
                for k in ("acc_personal", "acc_global", "mean_ll")
            }
        result[crit] = summary
    return result


# --------------------------------------------------------------------------- synthetic
def load_synth(prefix: Path):
    from app.criteria import CRITERION_INDEX

    def num(s: str) -> int:
        return int(s[1:])

    rows = [(num(r["user_id"]), num(r["video_a"]), num(r["video_b"]),
             CRITERION_INDEX[r["criterion"]], int(float(r["score"])), 10)
            for r in read_rows(Path(f"{prefix}.csv"))]  # fmt: skip
    pretrust = {num(r["user_id"]): 0.8 for r in read_rows(Path(f"{prefix}.users.csv"))
                if r["is_pretrusted"] == "True"}  # fmt: skip
    vouch_rows = read_rows(Path(f"{prefix}.vouches.csv"))
    vouches = [(num(r["voucher"]), num(r["vouchee"])) for r in vouch_rows if float(r["vouch"]) > 0]
    return np.array(rows, np.int64), pretrust, vouches


def sunrank_synth(kit: Kit, name: str, hp) -> tuple[Path, float]:
    """Fit a synthetic data set; write its scores in the kit's CSV shape."""
    from app.criteria import CRITERIA as ALL
    from app.learner import Learner

    prefix = kit.synth(name)
    rows, pretrust, vouches = load_synth(prefix)
    lr = Learner(hp)
    lr.load(rows, pretrust, vouches)
    t0 = time.perf_counter()
    lr.fit()
    took = time.perf_counter() - t0
    out = kit.cache / "runs" / f"{name}.sunrank.csv"
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video_id", "criterion", "score", "uncertainty", "peer"])
        for c in sorted(set(rows[:, 3].tolist())):
            ids, raw, unc, *_ = lr.video_scores(c)
            for v, x, s in zip(ids.tolist(), raw.tolist(), unc.tolist(), strict=True):
                w.writerow([f"v{v:06d}", ALL[c].name, x, s, "sunrank"])
    return out, took


def part_recovery(kit: Kit, hp, sizes) -> dict:
    res = {}
    for name in sizes:
        out, took = sunrank_synth(kit, name, hp)
        sc = kit.score(Path(f"{kit.synth(name)}.truth.csv"), out)
        peer, best = RECORDED_RECOVERY[name]
        res[name] = {"spearman": [s.get("spearman") for s in sc], "fit_s": round(took, 1),
                     "best_peer": peer, "best_peer_spearman": best}  # fmt: skip
    return res


def part_calibration(kit: Kit, hp, name: str = "M") -> dict:
    """Held-out calibration where the noise model is exact: synthetic data drawn from
    the 21-level GBT (synth.py). 10 % of the rows (``default_rng(0)``, as heldout.py
    splits) are held out; the same figures as the held-out part's calibration."""
    from app.learner import Learner

    rows, pretrust, vouches = load_synth(kit.synth(name))
    test = np.random.default_rng(0).random(len(rows)) < 0.1
    lr = Learner(hp)
    lr.load(rows[~test], pretrust, vouches)
    lr.fit()
    th = {}
    for u in lr.user_ids():
        th.update({(u, v, c): (t, s) for v, c, t, s in lr.contributor_scores(u)})
    d, s, r = [], [], []
    for u, a, b, c, sc, m in rows[test].tolist():
        ta, tb = th.get((u, a, c)), th.get((u, b, c))
        if sc != 0 and ta and tb:
            d.append(tb[0] - ta[0])
            s.append(float(np.hypot(ta[1], tb[1])))
            r.append(sc / m)
    d, s, r = np.array(d), np.array(s), np.array(r)
    return {
        "data": name, "calib_rows": len(r), "k_star": best_stretch(r, d),
        "coverage": pit_coverage(r, d, s), "coverage_s0": pit_coverage(r, d, 0 * s),
        "kappa": calibrating_scale(r, d, s), "median_sd": float(np.median(s)),
    }  # fmt: skip


def part_attacks(kit: Kit, hp) -> dict:
    res = {}
    for name in ("S-adv", "M-adv"):
        clean, _ = sunrank_synth(kit, name.removesuffix("-adv"), hp)
        attacked, _ = sunrank_synth(kit, name, hp)
        sc = kit.score(Path(f"{kit.synth(name)}.truth.csv"), attacked, clean)[0]
        sol = RECORDED_ATTACKS[name]
        res[name] = {
            "target_true_pct": sc.get("target_true_pct"),
            "clean_pct": sc.get("target_baseline_pct"),
            "attacked_pct": sc.get("target_pct"),
            "target_max_pct": TARGETS[name],
            "solidago_lipschitrust": {"clean_pct": sol[0], "attacked_pct": sol[1]},
        }
    return res


# --------------------------------------------------------------------------- real API
RANKINGS = "{ rankings(first: 100) { edges { rank score node { youtubeId } } } }"
ALL_RANKED = (
    "{ rankings(first: 100, includeUnsafe: true) { edges { rank score node { youtubeId } } } }"
)
VIDEO = "query($id: String!) { video(youtubeId: $id) { tournesolScore safe } }"
REGISTER = (
    "mutation($u: String!, $p: String!) { register(input: {username: $u, password: $p}) "
    "{ userErrors { code message } } }"
)
LOGIN = (
    "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) "
    "{ token userErrors { code message } } }"
)
SUBMIT = (
    "mutation($a: String!, $b: String!, $s: Int!) { submitComparison(input: {videoA: $a, "
    "videoB: $b, scores: [{criterion: CRITERION, score: $s}]}) "
    "{ userErrors { code message } } }"
)
# the criterion is an enum in newer schemas, a string in older ones
SUBMIT_FORMS = [
    SUBMIT.replace("CRITERION", c) for c in ("largely_recommended", '"largely_recommended"')
]


async def _gql(client, query: str, variables: dict | None = None, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = await client.post("/graphql", json={"query": query, "variables": variables or {}},
                          headers=headers)  # fmt: skip
    body = r.json()
    if r.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"GraphQL error: {r.status_code} {body}")
    return body["data"]


async def _submit(client, variables: dict, token: str) -> None:
    for i, form in enumerate(SUBMIT_FORMS):
        try:
            d = await _gql(client, form, variables, token)
        except RuntimeError:
            if i + 1 == len(SUBMIT_FORMS):
                raise
            continue
        if d["submitComparison"]["userErrors"]:
            raise RuntimeError(f"submitComparison: {d['submitComparison']['userErrors']}")
        SUBMIT_FORMS[:] = [form]  # this server's form
        return


async def _account(client, name: str) -> str:
    password = secrets.token_urlsafe(16)
    d = await _gql(client, REGISTER, {"u": name, "p": password})
    if d["register"]["userErrors"]:
        raise RuntimeError(f"register: {d['register']['userErrors']}")
    d = await _gql(client, LOGIN, {"u": name, "p": password})
    return d["login"]["token"]


async def _scores(client, query=ALL_RANKED) -> dict[str, float]:
    d = await _gql(client, query)
    return {e["node"]["youtubeId"]: e["score"] for e in d["rankings"]["edges"]}


async def _video(client, yt: str) -> dict:
    return (await _gql(client, VIDEO, {"id": yt}))["video"]


async def api_attacks(port: int) -> dict:
    import httpx

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        top = await _scores(client, RANKINGS)  # safe videos, best first
        every = await _scores(client, ALL_RANKED)
        before_top5 = list(top)[:5]
        by_score = sorted(top, key=top.get)
        # the safe video nearest the threshold, and the nearest one beyond the bound
        margin = next(v for v in by_score if top[v] >= 20.0 + UNTRUSTED_BOUND)
        targets = {"nearest_threshold": by_score[0], "beyond_bound": margin}
        others = [v for v in every if v not in targets.values() and v not in before_top5][:40]
        out: dict = {"safe_videos_before": len(top)}

        # a fresh account, three comparisons, all against one safe video
        for key, video in targets.items():
            before = await _video(client, video)
            token = await _account(client, f"lone_{secrets.token_hex(4)}")
            for o in others[:3]:
                await _submit(client, {"a": video, "b": o, "s": 10}, token)
            after = await _video(client, video)
            out[f"single_account_{key}"] = {
                "video": video, "comparisons": 3,
                "before": before["tournesolScore"], "after": after["tournesolScore"],
                "move": after["tournesolScore"] - before["tournesolScore"],
                "safe_before": before["safe"], "safe_after": after["safe"],
            }  # fmt: skip

        # 40 fresh accounts, 5 comparisons each, all against the #1 video
        target = before_top5[0]
        snapshot = await _scores(client, ALL_RANKED)
        tokens = [await _account(client, f"sybil_{secrets.token_hex(4)}_{i}") for i in range(40)]
        for i, tok in enumerate(tokens):
            for o in others[i % 30 : i % 30 + 5]:
                await _submit(client, {"a": target, "b": o, "s": 10}, tok)
        later = await _scores(client, ALL_RANKED)
        moves = [abs(later[v] - snapshot[v]) for v in snapshot if v in later]
        after_top = await _scores(client)
        out["forty_accounts"] = {
            "video": target, "comparisons": 200,
            "before": snapshot[target], "after": later.get(target),
            "move": later.get(target, float("nan")) - snapshot[target],
            "max_move_top100": max(moves), "top5_before": before_top5,
            "top5_after": list(after_top)[:5],
        }  # fmt: skip
    return out


def part_api() -> dict:
    sys.path.insert(0, str(ROOT / "bench"))
    from api import free_port, start, stop

    tmp = Path(tempfile.mkdtemp(prefix="sunrank-bench-peers-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUNRANK_")}
    env |= {
        "SUNRANK_DATA_DIR": str(tmp),
        "SUNRANK_DATABASE_URL": f"sqlite://{tmp / 'sunrank.sqlite3'}",
        "SUNRANK_LOG_LEVEL": "warning",
        "SUNRANK_RATE_LIMIT_PER_MINUTE": "100000000",
        "SUNRANK_RATE_LIMIT_PER_IP_PER_MINUTE": "100000000",
        # the bench registers 41 accounts from one address: lift the abuse limit
        "SUNRANK_REGISTRATIONS_PER_IP_PER_HOUR": "100000000",
        "SUNRANK_HOST": "127.0.0.1",
        "SUNRANK_PORT": str(port),
        "SUNRANK_METADATA_WORKER": "false",  # no YouTube on a bench machine
    }
    t0 = time.perf_counter()
    proc = start([sys.executable, "-m", "app", "serve", "--demo"], env, port, "/readyz")
    try:
        res = asyncio.run(api_attacks(port))
        res["server_ready_s"] = round(time.perf_counter() - t0, 1)
        return res
    finally:
        stop(proc)


def part_live(seconds: float) -> dict:
    """bench/_live_gap.py's protocol: 10 comparisons/s, sampled every 10 s."""
    try:
        from _live_gap import live_gap
    except ImportError:
        return {"status": "bench/_live_gap.py not present: live-vs-full gap not measured"}
    res = live_gap(seconds=seconds)
    keep = ("rows", "sent", "rate_per_s", "gap_max", "gap_median", "samples_over_1", "refits")
    return {k: res[k] for k in keep if k in res}


# --------------------------------------------------------------------------- report
def print_table(out: dict) -> None:
    if "heldout" in out:
        print("\n== held-out (tiny_tournesol_2024-01, seeds 0-4, paired rows) ==")
        head = f"{'criterion':22s} {'method':9s} {'personal':>9s} {'global':>8s} {'log-lik':>8s}"
        print(head + "  source")
    for crit, s in out.get("heldout", {}).items():
        for who in ("sunrank", "solidago", "choix"):
            if who in s:
                m = s[who]
                print(f"{crit:22s} {who:9s} {m['acc_personal']:9.4f} {m['acc_global']:8.4f} "
                      f"{m.get('mean_ll', float('nan')):+8.3f}  {m['source']}")  # fmt: skip
        sr = s["sunrank"]
        print(
            f"{'':22s} calibration: k* {sr['k_star']:.3f}, ±1σ predictive coverage "
            f"{sr['coverage']:.3f} (GBT noise alone {sr['coverage_s0']:.3f}; nominal 0.683); "
            f"calibrating scale of the uncertainties {sr.get('kappa')}"
        )
        if "paired_wins_vs_solidago" in s:
            print(f"{'':22s} splits where Sunrank ≥ Solidago: {s['paired_wins_vs_solidago']}")
    if "calibration" in out:
        c = out["calibration"]
        print(
            f"\n== calibration where the GBT noise model is exact (synthetic {c['data']}, "
            f"10 % held out, {c['calib_rows']} rows) =="
        )
        print(
            f"k* {c['k_star']:.3f}, ±1σ predictive coverage {c['coverage']:.3f} (GBT noise "
            f"alone {c['coverage_s0']:.3f}; nominal 0.683); calibrating scale {c['kappa']}"
        )
    if "recovery" in out:
        print("\n== recovery (Spearman with the truth) ==")
        for name, r in out["recovery"].items():
            sp = " / ".join(f"{x:.4f}" for x in r["spearman"])
            print(f"{name:6s} sunrank {sp}   best peer {r['best_peer_spearman']:.4f} "
                  f"({r['best_peer']}, recorded)   fit {r['fit_s']} s")  # fmt: skip
    if "attacks" in out:
        print("\n== attacks (target percentile, clean → attacked) ==")
        for name, a in out["attacks"].items():
            sl = a["solidago_lipschitrust"]
            print(f"{name:6s} sunrank {a['clean_pct']} → {a['attacked_pct']} (target ≤ "
                  f"{a['target_max_pct']}, true {a['target_true_pct']})   solidago+LT "
                  f"{sl['clean_pct']} → {sl['attacked_pct']} (recorded)")  # fmt: skip
    if "api" in out:
        a = out["api"]
        many = a["forty_accounts"]
        print("\n== real API, demo data ==")
        for key in ("nearest_threshold", "beyond_bound"):
            one = a[f"single_account_{key}"]
            print(
                f"1 fresh account, 3 comparisons vs the lowest safe video ({key}): "
                f"{one['before']:.2f} → {one['after']:.2f} "
                f"(safe {one['safe_before']} → {one['safe_after']})"
            )
        print(
            f"40 fresh accounts, 200 comparisons vs #1: {many['before']:.2f} → "
            f"{many['after']:.2f}; largest move in the top 100 {many['max_move_top100']:.2f}; "
            f"top 5 {'unchanged' if many['top5_before'] == many['top5_after'] else 'changed'}"
        )
    for name, why in out.get("failed", {}).items():
        print(f"\n== {name}: FAILED ==\n{why}")
    if "live" in out:
        lv = out["live"]
        print("\n== live vs full fit (display points, largest over every video) ==")
        if "gap_max" in lv:
            print(f"{lv['sent']} comparisons at {lv['rate_per_s']}/s: largest gap "
                  f"{lv['gap_max']:.3f}, median {lv['gap_median']:.3f}, samples over 1 point "
                  f"{lv['samples_over_1']}, refits {lv['refits']}")  # fmt: skip
        else:
            print(lv)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", default="heldout,calibration,recovery,attacks,api,live")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--sizes", default="S,M,L", help="recovery data sets")
    ap.add_argument("--live-seconds", type=float, default=300.0, help="live: stream length")
    ap.add_argument("--solidago", choices=["cached", "run"], default="cached")
    ap.add_argument("--choix", choices=["cached", "run"], default="cached")
    ap.add_argument("--cache", default=os.environ.get("SUNRANK_PEERS_CACHE", "/tmp/sunrank-peers"))
    ap.add_argument(
        "--peers-python",
        default=os.environ.get("SUNRANK_PEERS_PYTHON", str(ROOT.parent / "peers-venv/bin/python")),
    )
    ap.add_argument("--hparams", help="HParams overrides, e.g. lam=1,C=3 (default: defaults)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    hp = hparams_from(args.hparams)
    kit = Kit(args.peers_python, Path(args.cache))
    bounds = {
        "one_contributor": hp.display_bound(1.0),
        "all_untrusted": hp.display_bound(hp.untrusted_budget),
    }
    out: dict = {
        "hparams": {"lam": hp.lam, "nu": hp.nu, "delta": hp.delta, "C": hp.C,
                    "sigma": hp.sigma, "untrusted_budget": hp.untrusted_budget},
        "bounds_display_points": bounds,
    }  # fmt: skip
    t0 = time.perf_counter()
    runs = {
        "heldout": lambda: part_heldout(
            kit, hp, list(range(args.seeds)), args.solidago, args.choix
        ),
        "calibration": lambda: part_calibration(kit, hp),
        "recovery": lambda: part_recovery(kit, hp, args.sizes.split(",")),
        "attacks": lambda: part_attacks(kit, hp),
        "api": part_api,
        "live": lambda: part_live(args.live_seconds),
    }
    for name, run in runs.items():
        if name not in parts:
            continue
        try:
            out[name] = run()
        except Exception as exc:  # one broken part must not lose the others' figures
            out.setdefault("failed", {})[name] = f"{type(exc).__name__}: {str(exc)[-500:]}"
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print_table(out)
    sys.stdout.flush()
    print(json.dumps(out, default=float))


if __name__ == "__main__":
    main()
