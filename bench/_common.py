"""Shared helpers for the learner benchmarks: Tournesol CSV reader, synthetic data.

The benchmarks never touch the database: they read Tournesol's public dataset
format directly (usernames and YouTube ids mapped to ints here) and generate
synthetic comparisons with known true scores.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.criteria import CRITERION_INDEX  # noqa: E402

TINY = ROOT / "data" / "tournesol" / "tiny_tournesol_2024-01"


@dataclass
class Dataset:
    comparisons: np.ndarray  # (N, 6): user, video_a, video_b, criterion, score, score_max
    pretrust: dict[int, float] = field(default_factory=dict)
    vouches: list[tuple[int, int]] = field(default_factory=list)
    users: dict[str, int] = field(default_factory=dict)
    videos: dict[str, int] = field(default_factory=dict)
    true_scores: np.ndarray | None = None  # synthetic: per video id (criterion 0)


def load_tournesol(folder: Path = TINY) -> Dataset:
    """comparisons.csv (+ users.csv trust_score as pretrust, vouchers.csv)."""
    users: dict[str, int] = {}
    videos: dict[str, int] = {}

    def uid(name):
        return users.setdefault(name, len(users) + 1)

    def vid(name):
        return videos.setdefault(name, len(videos) + 1)

    rows = []
    with open(folder / "comparisons.csv", newline="") as f:
        for rec in csv.DictReader(f):
            c = CRITERION_INDEX.get(rec["criteria"])
            if c is None:
                continue
            smax = int(rec.get("score_max") or 10)
            rows.append(
                (uid(rec["public_username"]), vid(rec["video_a"]), vid(rec["video_b"]), c,
                 int(float(rec["score"])), smax)
            )  # fmt: skip
    pretrust = {}
    if (folder / "users.csv").exists():
        with open(folder / "users.csv", newline="") as f:
            for rec in csv.DictReader(f):
                if rec.get("trust_score"):
                    pretrust[uid(rec["public_username"])] = float(rec["trust_score"])
    vouches = []
    if (folder / "vouchers.csv").exists():
        with open(folder / "vouchers.csv", newline="") as f:
            for rec in csv.DictReader(f):
                if float(rec.get("value") or 1) > 0:
                    vouches.append((uid(rec["by_username"]), uid(rec["to_username"])))
    return Dataset(np.array(rows, np.int64), pretrust, vouches, users, videos)


def synthetic(
    n_rows: int,
    n_videos: int | None = None,
    n_users: int | None = None,
    seed: int = 0,
    noise: float = 1.0,
    extra_criteria: float = 0.0,
    trusted_fraction: float = 0.3,
) -> Dataset:
    """Power-law activity and popularity; GBT-sampled scores from known true scores.

    Each contributor u sees θ_uv = true_v + noise·N(0,1) and draws r from the uniform
    GBT density ∝ exp(r·d) on [-1, 1] with d = θ_ub − θ_ua, rounded to score_max 10.
    ``extra_criteria``: fraction of comparisons that also carry 2 other criteria
    (independent true scores are not modelled for them: same truth, fresh noise).
    """
    rng = np.random.default_rng(seed)
    n_videos = n_videos or max(50, n_rows // 10)
    n_users = n_users or max(10, n_rows // 50)
    n_cmp = int(n_rows / (1 + 2 * extra_criteria))
    true = rng.normal(0.0, 1.5, n_videos)
    act = rng.pareto(1.2, n_users) + 1.0  # activity: heavy-tailed
    pop = rng.pareto(1.0, n_videos) + 1.0  # popularity
    user = rng.choice(n_users, n_cmp, p=act / act.sum())
    a = rng.choice(n_videos, n_cmp, p=pop / pop.sum())
    b = rng.choice(n_videos, n_cmp, p=pop / pop.sum())
    keep = a != b
    user, a, b = user[keep], a[keep], b[keep]
    user_bias = rng.normal(0, noise, (n_users,))
    del user_bias

    def sample_r(d):
        # inverse CDF of p(r) ∝ exp(r d) on [-1, 1]
        uu = rng.random(len(d))
        small = np.abs(d) < 1e-6
        ds = np.where(small, 1.0, d)
        r = np.log(np.exp(-ds) + uu * (np.exp(ds) - np.exp(-ds))) / ds
        return np.where(small, 2 * uu - 1, r)

    def one_criterion(c, u, a, b):
        # a contributor's view of a video is stable: hash-seeded per (u, v) noise
        def view(v):
            h = (u.astype(np.int64) * 1_000_003 + v * 7919 + c * 104_729) % 2**31
            return true[v] + noise * _hash_normal(h)

        d = np.clip(view(b) - view(a), -50, 50)
        score = np.clip(np.rint(10 * sample_r(d)), -10, 10).astype(np.int64)
        return np.c_[u + 1, a + 1, b + 1, np.full(len(u), c), score, np.full(len(u), 10)]

    parts = [one_criterion(0, user, a, b)]
    if extra_criteria > 0:
        m = rng.random(len(user)) < extra_criteria
        for c in (1, 2):
            parts.append(one_criterion(c, user[m], a[m], b[m]))
    cmp = np.concatenate(parts)
    trusted = rng.random(n_users) < trusted_fraction
    pretrust = {int(u) + 1: 1.0 for u in np.flatnonzero(trusted)}
    # a few vouches from trusted to untrusted users
    vouchers = rng.choice(np.flatnonzero(trusted), min(n_users // 5, 1 + trusted.sum()))
    vouchees = rng.choice(n_users, len(vouchers))
    vouches = [(int(x) + 1, int(y) + 1) for x, y in zip(vouchers, vouchees, strict=True) if x != y]
    ts = np.zeros(n_videos + 1)
    ts[1:] = true
    return Dataset(cmp, pretrust, vouches, true_scores=ts)


def _hash_normal(h: np.ndarray) -> np.ndarray:
    """Deterministic N(0,1) from integer hashes (Box–Muller on two LCG draws)."""
    x1 = ((h * 1103515245 + 12345) % 2**31 + 0.5) / 2**31
    x2 = ((h * 69069 + 1) % 2**31 + 0.5) / 2**31
    return np.sqrt(-2 * np.log(x1)) * np.cos(2 * np.pi * x2)


SIZES = {"20k": 20_000, "100k": 100_000, "1m": 1_000_000}


def dataset(name: str) -> Dataset:
    if name == "tiny":
        return load_tournesol(TINY)
    if name in SIZES:
        n = SIZES[name]
        return synthetic(n, n_videos=max(50, n // 10), n_users=max(10, n // 50), seed=1)
    raise SystemExit(f"unknown size {name!r}; use tiny or one of {sorted(SIZES)}")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def spread(xs) -> dict:
    xs = sorted(xs)
    return {
        "median": statistics.median(xs),
        "min": xs[0],
        "max": xs[-1],
        "n": len(xs),
    }


def emit(result: dict) -> None:
    """The last line of every benchmark: one JSON object."""
    sys.stdout.flush()
    print(json.dumps(result, default=float))


def quiet_tf() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def hparams_from(spec: str | None) -> Any:
    """``HParams()`` with ``key=value,...`` overrides (e.g. ``lam=1,C=3``)."""
    from app.learner.hparams import HParams

    if not spec:
        return HParams()
    kw = dict(item.split("=", 1) for item in spec.split(","))
    return HParams().with_(**{k: type(getattr(HParams(), k))(v) for k, v in kw.items()})
