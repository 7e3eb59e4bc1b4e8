"""Display scale and the numpy side of the GBT likelihood (no TensorFlow import).

The learner works in raw units (θ, ρ unbounded). Display scores are squashed to
[-100, 100] with ``100·x/sqrt(1+x²)`` (DESIGN.md §2); uncertainties are squashed the
same way only by callers that want a display value.

``phi``/``dphi``/``loglik`` are the numpy twins of the TensorFlow functions in
``objective.py``; the CLI, API and benchmarks use them without importing TF.
"""

from __future__ import annotations

import numpy as np

_LOG2 = float(np.log(2.0))
SERIES_CUTOFF = 0.05  # below this |x| the Taylor series is more accurate than the closed form


def squash(x):
    """Raw score → display score in [-100, 100]."""
    x = np.asarray(x, dtype=np.float64)
    return 100.0 * x / np.sqrt(1.0 + x * x)


def unsquash(y):
    """Display score in (-100, 100) → raw score (inverse of :func:`squash`)."""
    y = np.asarray(y, dtype=np.float64) / 100.0
    return y / np.sqrt(1.0 - y * y)


def phi(x):
    """Φ(x) = log(sinh(x)/x), the log-partition of the uniform GBT model."""
    x = np.asarray(x, dtype=np.float64)
    ax = np.abs(x)
    small = ax < SERIES_CUTOFF
    safe = np.where(small, 1.0, ax)
    big = safe + np.log1p(-np.exp(-2.0 * safe)) - _LOG2 - np.log(safe)
    x2 = x * x
    series = x2 / 6.0 - x2 * x2 / 180.0 + x2**3 / 2835.0
    return np.where(small, series, big)


def dphi(x):
    """Φ'(x) = coth(x) − 1/x: the expected r given a score difference x."""
    x = np.asarray(x, dtype=np.float64)
    ax = np.abs(x)
    small = ax < SERIES_CUTOFF
    safe = np.where(small, 1.0, x)
    big = 1.0 / np.tanh(safe) - 1.0 / safe
    x2 = x * x
    series = x * (1.0 / 3.0 - x2 / 45.0 + 2.0 * x2 * x2 / 945.0)
    return np.where(small, series, big)


def loglik(r, d):
    """Log-density of r ∈ [-1, 1] under the uniform GBT model with difference d.

    p(r | d) = d·exp(r·d) / (2·sinh d), i.e. log p = r·d − Φ(d) − log 2.
    """
    r = np.asarray(r, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    return r * d - phi(d) - _LOG2


def gbt_cdf(x, d):
    """CDF at x ∈ [-1, 1] of the uniform GBT density p(r | d) ∝ exp(r·d)."""
    x = np.asarray(x, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    small = np.abs(d) < 1e-9
    dd = np.where(small, 1.0, d)
    pos = (np.exp((x - 1) * dd) - np.exp(-2 * dd)) / -np.expm1(-2 * dd)
    neg = np.expm1((x + 1) * dd) / np.expm1(2 * dd)
    return np.where(small, (x + 1) / 2, np.where(dd > 0, pos, neg))


NOMINAL_1SD = 0.682689  # P(|Z| ≤ 1): what a ±1-uncertainty interval claims


def predictive_coverage(r, d, s, step: float = 0.1, seed: int = 0) -> float:
    """Share of outcomes r inside the central NOMINAL_1SD interval of the posterior
    predictive p(r) = ∫ GBT(r | δ)·N(δ; d, s²) dδ (d a fitted score difference, s its
    uncertainty). Scores come in steps of ``step``: a randomised PIT over the step."""
    r, d, s = (np.asarray(a, dtype=np.float64) for a in (r, d, s))
    if len(r) == 0:
        return float("nan")
    x, w = np.polynomial.hermite_e.hermegauss(24)
    w = w / w.sum()
    deltas = d[:, None] + s[:, None] * x[None, :]
    lo, hi = np.maximum(r - step / 2, -1.0), np.minimum(r + step / 2, 1.0)
    f_lo = (gbt_cdf(lo[:, None], deltas) * w).sum(1)
    f_hi = (gbt_cdf(hi[:, None], deltas) * w).sum(1)
    u = f_lo + np.random.default_rng(seed).random(len(r)) * (f_hi - f_lo)
    tail = (1.0 - NOMINAL_1SD) / 2
    return float(((u >= tail) & (u <= 1.0 - tail)).mean())
