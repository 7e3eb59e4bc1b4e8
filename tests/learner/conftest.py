"""Small synthetic comparison sets for the learner tests (real TensorFlow, fast)."""

from __future__ import annotations

import os

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
