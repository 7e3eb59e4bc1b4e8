"""Online update: a local Newton solve of J in one ``tf.function`` call.

The local problem fixes every θ and ρ except

* a block of B slots (the submitter's slots for the two videos, and their
  neighbours in that submitter's comparisons), and
* K items (the affected (criterion, video) pairs), whose ρ is re-solved over all
  of its slots.

Inputs describe only the terms of J that touch a free variable:

* rows (R): comparisons incident to a block slot; each endpoint is a local block
  index in [0, B) or B for "fixed" (then its global slot index gives the value);
* pulls (P): (slot, item) pull terms with a free slot or a free item, same
  encoding (local item index in [0, K) or K for fixed);
* the priors of the free variables.

Each step forms the dense B×B Hessian of the block, eliminates the diagonal ρ
part exactly (Schur complement: S = H_θθ − H_θρ·D⁻¹·H_ρθ), so the step is the
exact joint Newton step, then picks the best of a fixed ladder of step lengths
(a vectorised line search; α = 0 is on the ladder, so J never increases).

All inputs have shape-relaxed signatures ([None]), so the function is traced once
per pair of variables; the variables are replaced (and the function re-traced)
only when capacity doubles. ``OnlineSolver.traces`` counts traces for tests.
"""

from __future__ import annotations

import tensorflow as tf

from app.learner.objective import DT, d2phi, dphi, huber, phi

_ALPHAS = (1.0, 0.5, 0.25, 0.125, 0.0625, 0.015625, 0.0)
_I = tf.TensorSpec([None], tf.int32)
_V = tf.TensorSpec([None], DT)


class OnlineSolver:
    """Owns the θ and ρ variables and the compiled local solve."""

    def __init__(self, capacity_slots: int, capacity_items: int, steps: int):
        self.steps = int(steps)
        self.traces = 0
        self.theta = tf.Variable(tf.zeros([max(1, capacity_slots)], DT), name="theta")
        self.rho = tf.Variable(tf.zeros([max(1, capacity_items)], DT), name="rho")
        self._build()

    # -- capacity -------------------------------------------------------------
    @property
    def capacity_slots(self) -> int:
        return int(self.theta.shape[0])

    @property
    def capacity_items(self) -> int:
        return int(self.rho.shape[0])

    def ensure_capacity(self, n_slots: int, n_items: int) -> bool:
        """Grow the variables by doubling; returns True when they were replaced."""
        grew = False
        if n_slots > self.capacity_slots:
            cap = self.capacity_slots
            while cap < n_slots:
                cap *= 2
            self.theta = tf.Variable(
                tf.concat([self.theta, tf.zeros([cap - self.capacity_slots], DT)], 0),
                name="theta",
            )
            grew = True
        if n_items > self.capacity_items:
            cap = self.capacity_items
            while cap < n_items:
                cap *= 2
            self.rho = tf.Variable(
                tf.concat([self.rho, tf.zeros([cap - self.capacity_items], DT)], 0), name="rho"
            )
            grew = True
        if grew:
            self._build()
        return grew

    def assign(self, theta, rho) -> None:
        """Write full-length arrays (padded to capacity with zeros)."""
        import numpy as np

        t = np.zeros(self.capacity_slots)
        t[: len(theta)] = theta
        r = np.zeros(self.capacity_items)
        r[: len(rho)] = rho
        self.theta.assign(t)
        self.rho.assign(r)

    # -- the compiled local solve --------------------------------------------------
    def _build(self) -> None:
        theta_var, rho_var, steps = self.theta, self.rho, self.steps

        @tf.function(input_signature=[_I, _I, _I, _I, _I, _I, _V, _I, _I, _I, _I, _V, _V])
        def solve(blk, items, la, lb, ga, gb, r, ls, gs, li, gi, pw, hp):
            self.traces += 1  # Python side effect: runs only while tracing
            lam, nu, delta, sigma = hp[0], hp[1], hp[2], hp[3]
            inv_s2 = 1.0 / (sigma * sigma)
            B, K = tf.shape(blk)[0], tf.shape(items)[0]
            x = tf.gather(theta_var, blk)
            y = tf.gather(rho_var, items)
            fa, fb = tf.gather(theta_var, ga), tf.gather(theta_var, gb)
            fs, fi = tf.gather(theta_var, gs), tf.gather(rho_var, gi)
            ma, mb = la < B, lb < B  # endpoint is free
            ms, mi = ls < B, li < K
            alphas = tf.constant(_ALPHAS, DT)

            def pick(v, loc, mask, fixed):
                # v: [..., n] free values; append a dummy so index n is valid
                vx = tf.concat([v, tf.zeros(tf.concat([tf.shape(v)[:-1], [1]], 0), DT)], -1)
                return tf.where(mask, tf.gather(vx, loc, axis=-1), fixed)

            def local_value(X, Y):  # X [A, B], Y [A, K] → [A]
                d = pick(X, lb, mb, fb) - pick(X, la, ma, fa)
                e = pick(X, ls, ms, fs) - pick(Y, li, mi, fi)
                h, _, _ = huber(e, delta)
                return (
                    tf.reduce_sum(phi(d) - r * d, -1)
                    + lam * tf.reduce_sum(pw * h, -1)
                    + 0.5 * inv_s2 * tf.reduce_sum(X * X, -1)
                    + 0.5 * nu * tf.reduce_sum(Y * Y, -1)
                )

            Bp, Kp = B + 1, K + 1
            for _ in range(steps):
                d = pick(x, lb, mb, fb) - pick(x, la, ma, fa)
                e = pick(x, ls, ms, fs) - pick(y, li, mi, fi)
                gd, c = dphi(d) - r, d2phi(d)
                _, dh, d2h = huber(e, delta)
                gp, hp_ = lam * pw * dh, lam * pw * d2h
                # gradient (index B / K collects the terms of fixed endpoints)
                gx = (
                    tf.math.unsorted_segment_sum(gd, lb, Bp)
                    - tf.math.unsorted_segment_sum(gd, la, Bp)
                    + tf.math.unsorted_segment_sum(gp, ls, Bp)
                )[:B] + inv_s2 * x
                gy = nu * y - tf.math.unsorted_segment_sum(gp, li, Kp)[:K]
                # dense block Hessian; pairs touching the dummy index B are dropped
                idx = tf.stack(
                    [tf.concat([la, lb, la, lb, ls], 0), tf.concat([la, lb, lb, la, ls], 0)], 1
                )
                val = tf.concat([c, c, -c, -c, hp_], 0)
                H = tf.scatter_nd(idx, val, tf.stack([Bp, Bp]))[:B, :B]
                H = H + inv_s2 * tf.eye(B, dtype=DT)
                M = tf.scatter_nd(tf.stack([ls, li], 1), -hp_, tf.stack([Bp, Kp]))[:B, :K]
                D = nu + tf.math.unsorted_segment_sum(hp_, li, Kp)[:K]
                MD = M / D
                S = H - tf.matmul(MD, M, transpose_b=True)
                rhs = -gx + tf.linalg.matvec(MD, gy)
                dx = tf.linalg.solve(S, rhs[:, None])[:, 0]
                dy = (-gy - tf.linalg.matvec(M, dx, transpose_a=True)) / D
                vals = local_value(
                    x[None, :] + alphas[:, None] * dx[None, :],
                    y[None, :] + alphas[:, None] * dy[None, :],
                )
                best = tf.argmin(vals)
                x = x + alphas[best] * dx
                y = y + alphas[best] * dy
            # Laplace precision at the new point: exact for the free variables
            d = pick(x, lb, mb, fb) - pick(x, la, ma, fa)
            e = pick(x, ls, ms, fs) - pick(y, li, mi, fi)
            c = d2phi(d)
            _, _, d2h = huber(e, delta)
            hp_ = lam * pw * d2h
            diag_x = (
                tf.math.unsorted_segment_sum(c, la, Bp)
                + tf.math.unsorted_segment_sum(c, lb, Bp)
                + tf.math.unsorted_segment_sum(hp_, ls, Bp)
            )[:B] + inv_s2
            diag_y = nu + tf.math.unsorted_segment_sum(hp_, li, Kp)[:K]
            theta_var.scatter_nd_update(blk[:, None], x)
            rho_var.scatter_nd_update(items[:, None], y)
            return x, y, diag_x, diag_y

        self.solve = solve
