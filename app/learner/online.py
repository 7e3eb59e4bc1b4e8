"""Online update: local Newton solves of J, each one ``tf.function`` call.

The local problem fixes every θ and ρ except N = B + K free variables: a block of
B slots (the submitter's slots for the two videos and their neighbours in that
submitter's comparisons) and K items (the affected (criterion, video) pairs, whose
ρ is re-solved over all of its slots).

The host describes only the terms of J that touch a free variable, with indices
into one local vector ``z = [x_free (N), fixed values (F)]``:

* rows (R): comparisons incident to a block slot (endpoints ``ia``, ``ib``);
* pulls (P): the (slot, item) pull terms with a free slot or a free item
  (``is_``, ``ii``), with weight ``pw``;
* the priors of the free variables (1/σ² for θ, ν for ρ).

``solve_block`` runs ``steps`` exact Newton steps on the dense N×N Hessian (N is
small: at most ``online_max_block`` slots per criterion plus 2 items per criterion)
and takes the best step of a fixed ladder of lengths (a vectorised line search;
α = 0 is on the ladder, so the local objective never increases). ``solve_items``
is the ρ-only variant for trust and voting-right changes: K independent 1-D Newton
problems, any K.

Inputs are packed in one int32 and one float64 vector with a size header, and the
functions are called through their concrete function: per-call Python overhead
is then two tensor conversions. Signatures are shape-relaxed, so each function
traces once per pair of variables; the variables are replaced (and both functions
re-traced) only when their capacity doubles. ``OnlineSolver.traces`` counts traces.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from app.learner.objective import DT, d2phi, dphi, huber, phi

_ALPHAS = (1.0, 0.5, 0.25, 0.125, 0.0625, 0.015625, 0.0)
_SIG = [tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], DT)]


def _grow(var: tf.Variable, n: int, name: str) -> tf.Variable:
    cap = int(var.shape[0])
    while cap < n:
        cap *= 2
    return tf.Variable(tf.concat([var, tf.zeros([cap - int(var.shape[0])], DT)], 0), name=name)


class OnlineSolver:
    """Owns the θ and ρ variables and the compiled local solves."""

    def __init__(self, capacity_slots: int, capacity_items: int, steps: int):
        self.steps = int(steps)
        self.traces = 0
        self.theta = tf.Variable(tf.zeros([max(16, capacity_slots)], DT), name="theta")
        self.rho = tf.Variable(tf.zeros([max(16, capacity_items)], DT), name="rho")
        self._build()

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
            self.theta = _grow(self.theta, n_slots, "theta")
            grew = True
        if n_items > self.capacity_items:
            self.rho = _grow(self.rho, n_items, "rho")
            grew = True
        if grew:
            self._build()
        return grew

    def assign(self, theta: np.ndarray, rho: np.ndarray) -> None:
        """Write full-length arrays (padded to capacity with zeros)."""
        self.ensure_capacity(len(theta), len(rho))
        t = np.zeros(self.capacity_slots)
        t[: len(theta)] = theta
        r = np.zeros(self.capacity_items)
        r[: len(rho)] = rho
        self.theta.assign(t)
        self.rho.assign(r)

    # ------------------------------------------------------------------ host side
    def block(
        self, blk, items, ga, gb, r, ps, pi, pw, agg_g, agg_h, hp
    ) -> tuple[np.ndarray, np.ndarray]:
        """Re-solve θ[blk] and ρ[items] (sorted unique global indices).

        rows: global slot endpoints ``ga``/``gb`` and ``r``; pulls: global slot
        ``ps``, global item ``pi``, weight ``pw``; ``agg_g``/``agg_h`` (per item):
        gradient and curvature in ρ of pull terms summarised by the caller as a
        quadratic around the current ρ. Returns (new values, Laplace precisions),
        both ordered as ``[blk, items]``.
        """
        B, K = len(blk), len(items)
        N = B + K
        # fixed endpoints get indices after the free ones
        fs = np.setdiff1d(np.r_[ga, gb, ps], blk, assume_unique=False)
        fi = np.setdiff1d(pi, items)
        F1 = len(fs)

        def slot_idx(g):
            pos = np.searchsorted(blk, g)
            pos = np.minimum(pos, max(B - 1, 0))
            free = (blk[pos] == g) if B else np.zeros(len(g), bool)
            return np.where(free, pos, N + np.searchsorted(fs, g))

        def item_idx(g):
            pos = np.minimum(np.searchsorted(items, g), max(K - 1, 0))
            free = (items[pos] == g) if K else np.zeros(len(g), bool)
            return np.where(free, B + pos, N + F1 + np.searchsorted(fi, g))

        ia, ib, is_, ii = slot_idx(ga), slot_idx(gb), slot_idx(ps), item_idx(pi)
        head = [B, K, len(fs), len(fi), len(ga), len(ps)]
        ints = np.concatenate([head, blk, items, fs, fi, ia, ib, is_, ii]).astype(np.int32)
        floats = np.concatenate([r, pw, agg_g, agg_h, hp]).astype(np.float64)
        out = self._call("block", ints, floats)
        return out[:N], out[N:]

    def items_only(self, items, ps, pi, pw, hp) -> tuple[np.ndarray, np.ndarray]:
        """Re-solve ρ[items] over the pull terms (ps, pi, pw); θ fixed."""
        K = len(items)
        ii = np.searchsorted(items, pi)
        ints = np.concatenate([[K, len(ps)], items, ps, ii]).astype(np.int32)
        floats = np.concatenate([pw, hp]).astype(np.float64)
        out = self._call("items", ints, floats)
        return out[:K], out[K:]

    # ------------------------------------------------------------------ graphs
    def _build(self) -> None:
        theta_var, rho_var, steps = self.theta, self.rho, self.steps
        alphas = tf.constant(_ALPHAS, DT)

        @tf.function(input_signature=_SIG)
        def solve_block(ints, floats):
            self.traces += 1  # Python side effect: runs only while tracing
            B, K, F1, F2, R, P = (ints[i] for i in range(6))
            N = B + K
            blk, items, fs, fi, ia, ib, is_, ii = tf.split(
                ints[6:], tf.stack([B, K, F1, F2, R, R, P, P])
            )
            r, pw, agg_g, agg_h, hp = tf.split(floats, tf.stack([R, P, K, K, 4]))
            lam, nu, delta, sigma = hp[0], hp[1], hp[2], hp[3]
            # prior curvature, plus the summarised pulls of crowded items (their ρ part)
            q = tf.concat([tf.fill([B], 1.0 / (sigma * sigma)), nu + agg_h], 0)
            ag = tf.concat([tf.zeros([B], DT), agg_g], 0)
            fixed = tf.concat([tf.gather(theta_var, fs), tf.gather(rho_var, fi)], 0)
            x = tf.concat([tf.gather(theta_var, blk), tf.gather(rho_var, items)], 0)
            x0 = x
            # 0.5·q·x² + ag·(x − x0) + 0.5·agg_h·((x − x0)² − x²): prior + summarised pulls
            qp = tf.concat([tf.fill([B], 1.0 / (sigma * sigma)), tf.fill([K], nu)], 0)
            # clamped indices: every fixed endpoint → the dummy row/column N
            ca, cb, cs, ci = (tf.minimum(v, N) for v in (ia, ib, is_, ii))
            seg = tf.concat([ca, cb, cs, ci], 0)
            hidx = tf.stack(
                [tf.concat([ca, cb, ca, cb, cs, ci, cs, ci], 0),
                 tf.concat([ca, cb, cb, ca, cs, ci, ci, cs], 0)], 1,
            )  # fmt: skip
            lpw = lam * pw

            def derivs(x):
                z = tf.concat([x, fixed], 0)
                d = tf.gather(z, ib) - tf.gather(z, ia)
                e = tf.gather(z, is_) - tf.gather(z, ii)
                return d, e

            def value(X):  # X: [A, N] → [A]
                Z = tf.concat([X, tf.broadcast_to(fixed, [tf.shape(X)[0], F1 + F2])], 1)
                d = tf.gather(Z, ib, axis=1) - tf.gather(Z, ia, axis=1)
                e = tf.gather(Z, is_, axis=1) - tf.gather(Z, ii, axis=1)
                h, _, _ = huber(e, delta)
                return (
                    tf.reduce_sum(phi(d) - r * d, 1)
                    + tf.reduce_sum(lpw * h, 1)
                    + 0.5 * tf.reduce_sum(qp * X * X, 1)
                    + tf.reduce_sum(ag * (X - x0), 1)
                    + 0.5 * tf.reduce_sum((q - qp) * (X - x0) * (X - x0), 1)
                )

            for _ in range(steps):
                d, e = derivs(x)
                gd, c = dphi(d) - r, d2phi(d)
                _, dh, d2h = huber(e, delta)
                gp, hh = lpw * dh, lpw * d2h
                g = tf.math.unsorted_segment_sum(tf.concat([-gd, gd, gp, -gp], 0), seg, N + 1)
                g = g[:N] + qp * x + ag + (q - qp) * (x - x0)
                hv = tf.concat([c, c, -c, -c, hh, hh, -hh, -hh], 0)
                H = tf.scatter_nd(hidx, hv, tf.stack([N + 1, N + 1]))[:N, :N]
                H = H + tf.linalg.diag(q)
                dx = tf.linalg.cholesky_solve(tf.linalg.cholesky(H), -g[:, None])[:, 0]
                vals = value(x[None, :] + alphas[:, None] * dx[None, :])
                x = x + alphas[tf.argmin(vals)] * dx
            d, e = derivs(x)
            _, _, d2h = huber(e, delta)
            cc = d2phi(d)
            hh = lpw * d2h
            prec = tf.math.unsorted_segment_sum(tf.concat([cc, cc, hh, hh], 0), seg, N + 1)
            prec = prec[:N] + q
            theta_var.scatter_nd_update(blk[:, None], x[:B])
            rho_var.scatter_nd_update(items[:, None], x[B:])
            return tf.concat([x, prec], 0)

        @tf.function(input_signature=_SIG)
        def solve_items(ints, floats):
            self.traces += 1
            K, P = ints[0], ints[1]
            items, ps, ii = tf.split(ints[2:], tf.stack([K, P, P]))
            pw, hp = tf.split(floats, tf.stack([P, 4]))
            lam, nu, delta = hp[0], hp[1], hp[2]
            lpw = lam * pw
            t = tf.gather(theta_var, ps)
            y = tf.gather(rho_var, items)
            for _ in range(steps + 2):
                e = t - tf.gather(y, ii)
                _, dh, d2h = huber(e, delta)
                g = nu * y - tf.math.unsorted_segment_sum(lpw * dh, ii, K)
                h = nu + tf.math.unsorted_segment_sum(lpw * d2h, ii, K)
                dy = -g / h
                Y = y[None, :] + alphas[:, None] * dy[None, :]  # [A, K]
                hub, _, _ = huber(t[None, :] - tf.gather(Y, ii, axis=1), delta)
                per = (
                    tf.transpose(tf.math.unsorted_segment_sum(tf.transpose(lpw * hub), ii, K))
                    + 0.5 * nu * Y * Y
                )  # [A, K]
                best = tf.argmin(per, 0)
                y = y + tf.gather(alphas, best) * dy
            e = t - tf.gather(y, ii)
            _, _, d2h = huber(e, delta)
            prec = nu + tf.math.unsorted_segment_sum(lpw * d2h, ii, K)
            rho_var.scatter_nd_update(items[:, None], y)
            return tf.concat([y, prec], 0)

        # traced on first use (a full fit alone never traces them)
        self._fns = {"block": solve_block, "items": solve_items}
        self._concrete: dict[str, object] = {}

    def _call(self, name: str, ints: np.ndarray, floats: np.ndarray) -> np.ndarray:
        fn = self._concrete.get(name)
        if fn is None:
            fn = self._concrete[name] = self._fns[name].get_concrete_function()
        return fn(tf.constant(ints), tf.constant(floats)).numpy()
