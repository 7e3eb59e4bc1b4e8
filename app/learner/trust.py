"""Trust and voting rights (NumPy, no TensorFlow).

* :func:`propagate_trust` — LipschiTrust (Tournesol's): the fixed point of
  ``t_u = min(1, pretrust_u + Σ_{voucher→u} decay·t_voucher / (out_vouches(voucher) + sink))``.
  Each voucher's outgoing weights sum to decay·d/(d+sink) < decay, so the map is a
  contraction (factor < 0.8) and plain iteration converges geometrically.
* :func:`voting_rights` — per group (one group = one (criterion, video) item):

  - raters with trust > 0: AffineOvertrust (Tournesol's) among *them only*: ``m`` is
    the smallest value in [0, 1] with ``Σ_{t_u<m} p_u·(m − t_u) = ratio·T + min_overtrust``
    (``T = Σ p_u·t_u``), or 1 if that budget is never reached; ``vr_u = p_u·max(t_u, m)``;
  - raters with trust 0 (fresh accounts, Sybil rings nobody trusted vouches for) share
    a fixed budget: ``vr_u = p_u·min(m, untrusted_budget / Σ_{t=0} p)``, so their voting
    rights sum to at most ``untrusted_budget`` on any video, however many they are.

  The split is what makes the untrusted group's influence provable (hparams.py):
  trust-0 accounts never change anyone else's voting right, so adding or removing
  all of them only adds or removes their own pull terms. Under plain AffineOvertrust
  a lone untrusted rater of a thinly rated video held a full right (1) and 40 of them
  shared 0.1·T + 2 ≈ 2, while diluting the low-trust honest raters' share.

  f(m) = Σ_u p_u·max(0, m − t_u) is the maximum over the prefixes (by increasing
  t) of P_k·m − Q_k (P, Q prefix sums of p and p·t), so the root of f(m) = budget
  is min_k (budget + Q_k)/P_k. That gives an exact, sort-based, fully vectorised
  computation over all groups at once.
"""

from __future__ import annotations

import numpy as np


def propagate_trust(
    pretrust: np.ndarray,
    voucher: np.ndarray,
    vouchee: np.ndarray,
    decay: float = 0.8,
    sink: float = 5.0,
    tol: float = 1e-12,
    max_iter: int = 1000,
) -> np.ndarray:
    """LipschiTrust fixed point. ``voucher``/``vouchee`` are user-index arrays.

    Self-vouches are ignored; duplicates should be removed by the caller (a vouch
    is a set element).
    """
    pretrust = np.clip(np.asarray(pretrust, dtype=np.float64), 0.0, 1.0)
    n = pretrust.shape[0]
    voucher = np.asarray(voucher, dtype=np.int64)
    vouchee = np.asarray(vouchee, dtype=np.int64)
    keep = voucher != vouchee
    voucher, vouchee = voucher[keep], vouchee[keep]
    if voucher.size == 0:
        return pretrust.copy()
    out_deg = np.bincount(voucher, minlength=n).astype(np.float64)
    coef = decay / (out_deg[voucher] + sink)
    t = pretrust.copy()
    for _ in range(max_iter):
        new = np.minimum(1.0, pretrust + np.bincount(vouchee, coef * t[voucher], minlength=n))
        if np.max(np.abs(new - t)) <= tol:
            return new
        t = new
    return t


def overtrust_level(
    group: np.ndarray,
    trust: np.ndarray,
    p: np.ndarray,
    n_groups: int,
    ratio: float = 0.1,
    min_overtrust: float = 2.0,
) -> np.ndarray:
    """m per group (AffineOvertrust); groups without members get 1."""
    group = np.asarray(group, dtype=np.int64)
    trust = np.asarray(trust, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    m = np.ones(n_groups)
    if group.size == 0:
        return m
    order = np.lexsort((trust, group))
    g, t, pp = group[order], trust[order], p[order]
    budget = ratio * np.bincount(g, pp * t, minlength=n_groups) + min_overtrust
    # prefix sums restarted at each group start
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    cp = np.cumsum(pp)
    cq = np.cumsum(pp * t)
    base = np.repeat(np.r_[0.0, cp[starts[1:] - 1]], np.diff(np.r_[starts, g.size]))
    baseq = np.repeat(np.r_[0.0, cq[starts[1:] - 1]], np.diff(np.r_[starts, g.size]))
    P = cp - base
    Q = cq - baseq
    with np.errstate(divide="ignore", invalid="ignore"):
        cand = np.where(P > 0, (budget[g] + Q) / P, np.inf)
    m[g[starts]] = np.minimum.reduceat(cand, starts)
    return np.minimum(m, 1.0)


def voting_rights(
    group: np.ndarray,
    trust: np.ndarray,
    p: np.ndarray,
    n_groups: int,
    ratio: float = 0.1,
    min_overtrust: float = 2.0,
    untrusted_budget: float = 0.25,
) -> np.ndarray:
    """vr per member (arrays are per member, one per slot); see the module docstring."""
    group = np.asarray(group, dtype=np.int64)
    trust = np.asarray(trust, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    known = trust > 0
    m = overtrust_level(group[known], trust[known], p[known], n_groups, ratio, min_overtrust)
    p0 = np.bincount(group[~known], p[~known], minlength=n_groups)
    with np.errstate(divide="ignore"):
        share0 = np.minimum(m, untrusted_budget / p0)  # groups without trust-0 raters: unused
    return p * np.where(known, np.maximum(trust, m[group]), share0[group])


def voting_rights_one(
    trust: np.ndarray,
    p: np.ndarray,
    ratio: float = 0.1,
    min_overtrust: float = 2.0,
    untrusted_budget: float = 0.25,
) -> np.ndarray:
    """:func:`voting_rights` of a single group (the online path: no grouping)."""
    trust = np.asarray(trust, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    known = trust > 0
    tk, pk = trust[known], p[known]
    order = np.argsort(tk, kind="stable")
    budget = ratio * float(np.dot(pk, tk)) + min_overtrust
    P = np.cumsum(pk[order])
    Q = np.cumsum((pk * tk)[order])
    with np.errstate(divide="ignore", invalid="ignore"):
        cand = np.where(P > 0, (budget + Q) / P, np.inf)
    m = min(float(cand.min()), 1.0) if len(cand) else 1.0
    p0 = float(p[~known].sum())
    share0 = min(m, untrusted_budget / p0) if p0 > 0 else m
    return p * np.where(known, np.maximum(trust, m), share0)
