"""Hyper-parameters of the learner (no TensorFlow import).

Objective (DESIGN.md §4), per criterion, θ one slot per (contributor, video) the
contributor compared, ρ one per video::

    J = Σ_rows [Φ(θ_b − θ_a) − r·(θ_b − θ_a)]          uniform GBT, r = score/score_max
      + λ · Σ_slots w_uv · H_δ(θ_uv − ρ_v)              robust pull, H_δ(x) = √(x²+δ²) − δ
      + Σ_slots θ_uv² / (2σ²)                           individual prior
      + (ν/2) · Σ_v ρ_v²                                global prior
    w_uv = vr_uv · n_uv / (C + n_uv)

Defaults, chosen by held-out accuracy (``bench/learner_quality.py --parts bc --grid``
and variants; tiny_tournesol_2024-01, seeded 90/10 split over rows, sign accuracy on
the 1,648 held-out ``largely_recommended`` rows with a nonzero score, personal /
global; C=3, σ=7 and δ=0.5 unless said):

    λ=1   ν=10            0.8459 / 0.7919
    λ=0.3 ν=3             0.8568 / 0.7955
    λ=0.3 ν=0.3           0.8647 / 0.8070
    λ=1   ν=0.1           0.8653 / 0.8307
    λ=1   ν=0.1  δ=2      0.8708 / 0.8277   (best personal, bound 20·w: too weak)
    λ=2   ν=0.1  δ=4      0.8714 / 0.8271
    λ=1   ν=0.3  δ=2      0.8677 / 0.8228
    λ=1   ν=1    δ=2      0.8617 / 0.8137   ← default
    λ=0.3 ν=0.1           0.8671 / 0.8222

No setting tried reaches the issue's personal target (0.875); global ≥ 0.81 needs
ν ≤ 1. The default is the most robust point that meets the global target: its
Byzantine bound 2·λ·w/ν = 2·w is the same as DESIGN.md's (λ=0.3, ν=0.3) row, and a
wider δ (2: the pull is quadratic within ±2 raw units, |x| beyond) buys personal
accuracy at no cost in the bound. ν=1 keeps Tournesol's "presumption of
non-recommendability": a video rated once stays near 0.

Byzantine bound: the optimality condition for ρ_v is
ν·ρ_v = λ·Σ_u w_uv·H'_δ(θ_uv − ρ_v) with |H'_δ| < 1, and the rest of the problem is
convex, so one contributor can move ρ_v by at most 2·λ·w_uv/ν whatever they submit
(and by at most λ·w_uv/ν relative to not rating at all). w_uv < vr_uv ≤ 1, so with
the defaults (λ=1, ν=1) one fully trusted contributor moves a global raw score by
less than 2·w (w = 1/4 after one comparison of the video, → 1 with many), k
colluding accounts by less than 2·k·w, and untrusted accounts together by less
than 2·(0.1·T_v + 2) since they share the per-video overtrust budget.
When contributors' comparisons couple several videos the exact statement is in
ℓ2 over all videos: ‖Δρ‖₂ ≤ 2·λ·‖w_u‖₂/ν (J is ν-strongly convex in ρ after
minimising out θ).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True, slots=True)
class HParams:
    # objective
    lam: float = 1.0  # λ: strength of the pull of personal scores to global ones
    nu: float = 1.0  # ν: global prior (shrinks rarely rated videos to 0)
    delta: float = 2.0  # δ: smoothing of |x| in the pull
    C: float = 3.0  # n/(C+n): a contributor's weight grows with their comparisons of v
    sigma: float = 7.0  # individual prior (Tournesol's σ)
    # trust (LipschiTrust) and voting rights (AffineOvertrust), Tournesol's values
    trust_decay: float = 0.8
    sink_vouch: float = 5.0
    overtrust_ratio: float = 0.1
    min_overtrust: float = 2.0
    privacy_penalty: float = 0.5
    # full fit: stop when max |∂J| ≤ fit_gtol (over every θ and ρ)
    fit_gtol: float = 1e-6
    fit_max_iter: int = 100
    fit_max_cg: int = 400
    # online update: Newton steps on the local block, and block size cap per criterion
    online_steps: int = 2
    online_max_block: int = 16

    def digest(self) -> str:
        """Stable hash of the values that change the optimum or the stored state.

        Solver knobs (tolerance, iteration caps, online steps) are excluded: a
        checkpoint made with a different tolerance is still a valid warm start.
        """
        d = asdict(self)
        for k in ("fit_gtol", "fit_max_iter", "fit_max_cg", "online_steps", "online_max_block"):
            d.pop(k)
        blob = json.dumps({k: float(v) for k, v in sorted(d.items())}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def with_(self, **kw) -> HParams:
        return replace(self, **kw)

    def byzantine_bound(self, w: float = 1.0) -> float:
        """Largest move of one global raw score by one contributor of weight w."""
        return 2.0 * self.lam * w / self.nu
