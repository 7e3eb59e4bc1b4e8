"""Small synthetic comparison sets for the learner tests (real TensorFlow, fast)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_comparisons(n_users=8, n_videos=15, per_user=12, seed=0, criteria=(0,)):
    """(N, 6) rows: user ids 1.., video ids 101..; GBT-like scores from true scores."""
    rng = np.random.default_rng(seed)
    true = rng.normal(0, 1.5, n_videos)
    rows, seen = [], set()
    for u in range(1, n_users + 1):
        for _ in range(per_user):
            a, b = rng.choice(n_videos, 2, replace=False)
            if (u, min(a, b), max(a, b)) in seen:
                continue
            seen.add((u, min(a, b), max(a, b)))
            d = true[b] - true[a] + rng.normal(0, 0.5)
            for c in criteria:
                score = int(np.clip(np.rint(10 * np.tanh(d / 2)), -10, 10))
                rows.append((u, 101 + a, 101 + b, c, score, 10))
    return np.array(rows, np.int64)


@pytest.fixture(scope="session")
def small():
    return make_comparisons()


@pytest.fixture(scope="session")
def small_trusted():
    # every user fully trusted: voting rights are all 1 (m_v = 1 never binds)
    return {u: 1.0 for u in range(1, 9)}


@pytest.fixture(scope="session")
def make_cmp():
    return make_comparisons


TINY = Path(__file__).resolve().parents[2] / "data" / "tournesol" / "tiny_tournesol_2024-01"


def load_tiny(criterion: str = "largely_recommended") -> tuple[np.ndarray, dict[int, float]]:
    """The demo data set's rows of one criterion, as (N, 6) learner rows, and its pretrust.

    Usernames and YouTube ids become ints in order of appearance (criterion index 0).
    """
    users: dict[str, int] = {}
    videos: dict[str, int] = {}
    rows = []
    with open(TINY / "comparisons.csv", newline="") as f:
        for rec in csv.DictReader(f):
            if rec["criteria"] != criterion:
                continue
            u = users.setdefault(rec["public_username"], len(users) + 1)
            a = videos.setdefault(rec["video_a"], len(videos) + 1)
            b = videos.setdefault(rec["video_b"], len(videos) + 1)
            rows.append((u, a, b, 0, int(float(rec["score"])), 10))
    with open(TINY / "users.csv", newline="") as f:
        pretrust = {users[r["public_username"]]: float(r["trust_score"])
                    for r in csv.DictReader(f) if r["public_username"] in users}  # fmt: skip
    return np.array(rows, np.int64), pretrust


@pytest.fixture(scope="session")
def tiny_rows():
    return load_tiny()
