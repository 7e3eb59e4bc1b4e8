"""Hyper-parameters of the learner (no TensorFlow import).

Objective (DESIGN.md §4), per criterion, θ one slot per (contributor, video) the
contributor compared, ρ one per video::

    J = Σ_rows [Φ(θ_b − θ_a) − r·(θ_b − θ_a)]          uniform GBT, r = score/score_max
      + λ · Σ_slots w_uv · H_δ(θ_uv − ρ_v)              robust pull, H_δ(x) = √(x²+δ²) − δ
      + Σ_slots θ_uv² / (2σ²)                           individual prior
      + (ν/2) · Σ_v ρ_v²                                global prior
    w_uv = vr_uv · n_uv / (C + n_uv)

Defaults, chosen by held-out accuracy AND manipulation resistance
(``bench/learner_quality.py --parts bd --lam .. --nu .. --delta .. --C ..``).
(b): tiny_tournesol_2024-01, mean over 5 seeded 90/10 row splits (seeds 0-4), sign
accuracy on the ~1,650 held-out ``largely_recommended`` rows with a nonzero score;
one split's standard deviation is ≈ 0.006 (20 splits at λ=0.3 ν=3 δ=0.5: 0.851 to
0.874), so differences below ~0.005 are noise. (d): 40 fake accounts at trust 0
rate a bottom-decile video (10th percentile) +10 against 29 others, synthetic 20k
rows; "move" is its raw ρ move, "bound" 2·λ·Σw_fake/ν.

    λ    ν    δ    C   personal  global   (d) trust 0: pct after  move  bound
    1    1    2    3   0.8606    0.8129                99.8       1.79  3.39  ← default
    0.3  0.3  0.5  3   0.8661    0.8142                99.7       1.98  3.66
    0.3  0.3  0.5  1   0.8687    0.8222                99.4       2.17  4.09
    1    0.1  2    3   0.8671    0.8240                99.9      18.2  34.9
    0.5  1    2    3   0.8624    0.8120                99.5       1.00  1.86
    0.3  1    2    3   0.8626    0.8073                99.5       0.63  1.06
    0.5  3    2    3   0.8609    0.8097                99.4       0.34  0.58
    0.3  3    0.5  3   0.8621    0.7988                99.1       0.22  0.35
    0.1  1    2    3   0.8606    0.8034                99.2       0.21  0.37

What this shows:

* personal ≥ 0.875 is not reached by any setting (best 5-split mean 0.8687; no
  single split of 20 reached it at DESIGN.md's λ=0.3 ν=3 δ=0.5, best 0.8736). Our
  solver of J matches an independent scipy L-BFGS solve to 1e-7 in ρ, so the gap to
  DESIGN's 87.5 % is protocol, not implementation (see bench/learner_quality.py).
* global ≥ 0.81 needs λ/ν ≳ 1/3 with δ=2, or λ/ν ≥ 1 with δ=0.5.
* Against trust-0 Sybils the *percentile* move is ~99 at every λ, ν, δ, C tried:
  λ/ν scales both the fakes' raw move and the spread of thinly rated videos' ρ, so
  it cannot buy robustness. What decides it is the AffineOvertrust budget: the 40
  fakes share 0.1·T_v + 2 ≈ 2 units of voting right, more than the honest raters of
  a thinly rated video hold. Measured at the default λ, ν: min_overtrust 2 → 99.8th
  percentile (Σw_fake 1.70), 0.5 → 97.6th (0.52), 0 → 17.1st (+7 points, 0.10).
  That is a DESIGN.md decision (Tournesol's constant 2), not changed here.

Default kept at λ=1, ν=1, δ=2, C=3: it meets global ≥ 0.81 with the smallest
per-contributor bound among the settings that do (2·w), and its online updates stay
within the tests' refit tolerance. λ=0.3 ν=0.3 δ=0.5 (same bound ratio) is +0.55 /
+0.13 points, within one split's noise, but its sharper kink leaves online ρ 0.063
from a refit on the test data (tolerance 0.05): not switched without re-validating
that. ν=1 keeps Tournesol's "presumption of non-recommendability": a video rated
once stays near 0.

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
