"""The synchronous learner: state, full fit, online events, reads.

One ``Learner`` holds every criterion as one flat problem (see ``objective.py``)
and is meant to be driven from a single thread (the service's TF worker).

API::

    learner = Learner(hparams)                       # empty
    learner.load(comparisons, pretrust, vouches, private)   # bulk load, no fit
        # comparisons: (N, 6) int array or iterable of
        #   (user_id, video_a, video_b, criterion_idx, score, score_max)
        # pretrust: {user_id: float}; vouches: iterable of (voucher_id, vouchee_id);
        # private: set of (user_id, video_id) whose rating is private
    learner.fit(progress=cb) -> FitReport             # cb(iteration, objective, max_abs_grad)

    # online events; each returns Changed(items, user): the (criterion_idx, video_id)
    # items whose global score was re-solved, and the contributor concerned
    learner.upsert_comparison(user, video_a, video_b, {criterion_idx: (score, score_max)})
    learner.delete_comparison(user, video_a, video_b)
    learner.set_pretrust(user, value)
    learner.set_vouch(voucher, vouchee, active)
    learner.set_visibility(user, video, is_public)

    # reads (raw, unsquashed; uncertainty = 1/sqrt(diag of J's Hessian))
    learner.video_scores(criterion_idx) -> (video_ids, raw, uncertainty, n_contributors,
                                            n_comparisons)      # numpy arrays
    learner.video_score(video_id) -> {criterion_idx: (raw, uncertainty, n_contrib, n_comp)}
    learner.contributor_scores(user_id) -> [(video_id, criterion_idx, raw, uncertainty)]
    learner.trust(user_id) -> float
    learner.sum_trust(video_id, criterion_idx) -> float
    learner.state() -> dict[str, np.ndarray];  Learner.from_state(hparams, state)
    learner.save_checkpoint(directory, watermark) -> Path
    Learner.restore_checkpoint(directory, hparams) -> (learner, watermark)  # CheckpointError

Conventions: a comparison is stored once per unordered pair, oriented by the
learner's internal video index (a < b), r negated when the caller's order is the
reverse; n_uv counts u's active comparisons of v *on that criterion*. Videos and
contributors whose comparisons were all deleted keep their slots with n = 0
(weight 0, so θ → 0 and ρ → 0: the prior); reads skip them.

Online events re-solve a local block exactly (``online.py``): the block grows
breadth-first from the compared slots through the factor graph (comparisons,
pulls) up to ``BLOCK_SLOTS`` θ and ``BLOCK_ITEMS`` ρ. What it leaves out (the
far, weakly coupled rest) is the drift the service's background refits remove.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from app.criteria import CRITERIA
from app.learner.hparams import HParams
from app.learner.store import Adjacency, Table
from app.learner.trust import propagate_trust, voting_rights, voting_rights_one

if TYPE_CHECKING:  # imported lazily at run time: it loads TensorFlow
    from app.learner.online import OnlineSolver

N_CRITERIA = len(CRITERIA)
_VBITS = 31  # videos < 2**31, users < 2**28 in packed slot keys


# Online block, measured on the demo data (tiny_tournesol, 30 events, gap to a full
# fit of the same events in display points): the submitter's 16 nearest slots and
# the neighbours' cheap items left a median 0.41 and p90 1.06 after ONE event;
# growing the block breadth-first to 128 θ + 64 ρ gives a median 0.035 and p90 0.20
# for 6-8 ms an event (the dense Newton step is O(N³), N ≤ 192).
BLOCK_SLOTS = 128
BLOCK_ITEMS = 64
# a variable with more neighbours than this is a hub: a slot joins the block but its
# neighbours are not expanded, an item stays fixed unless it is a compared one
# (each neighbour moves it little; at 1M rows, freeing popular neighbours made
# events 100-350 ms)
BLOCK_FANOUT = 64
SWEEP_MOVED = 1e-3  # raw θ move past which a sweep re-solves the video's ρ
PUBLISH_EPS = 1e-7  # raw ρ (relative precision) move below which a neighbour is not
# reported as changed: its score view is not rebuilt (64 views an event cost ~10 ms)


# The learner's tables, their columns declared for type checkers (Table creates them
# from the dtypes it is given; these classes add no behaviour).
class _Users(Table):
    id: np.ndarray
    pretrust: np.ndarray
    trust: np.ndarray


class _Videos(Table):
    id: np.ndarray


class _Items(Table):
    video: np.ndarray
    crit: np.ndarray
    rho: np.ndarray
    prec: np.ndarray
    ncontrib: np.ndarray
    ncomp: np.ndarray


class _Slots(Table):
    item: np.ndarray
    user: np.ndarray
    video: np.ndarray
    cnt: np.ndarray
    p: np.ndarray
    vr: np.ndarray
    w: np.ndarray
    theta: np.ndarray
    prec: np.ndarray


class _Rows(Table):
    a: np.ndarray
    b: np.ndarray
    r: np.ndarray
    active: np.ndarray


class Changed(NamedTuple):
    items: set[tuple[int, int]]  # (criterion_idx, video_id) whose ρ was re-solved
    user: int | None


def _slot_key(c: int, u: int, v: int) -> int:
    return ((u << _VBITS) | v) << 4 | c


def _row_key(u: int, a: int, b: int, c: int) -> int:
    return ((((u << _VBITS) | a) << _VBITS | b) << 4) | c


def _lookup(sorted_keys: np.ndarray, values: np.ndarray, missing: int) -> np.ndarray:
    """Position of each value in sorted_keys, or ``missing``."""
    if len(sorted_keys) == 0:
        return np.full(len(values), missing, np.int32)
    pos = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return np.where(sorted_keys[pos] == values, pos, missing).astype(np.int32)


class Learner:
    def __init__(self, hparams: HParams | None = None):
        self.hp = hparams or HParams()
        # Events its owner applied online since the state was last a full fit (the
        # drift a refit removes), recorded in checkpoints; None: unknown (an older one).
        self.online_events: int | None = 0
        self._rebuild(
            user_id=np.zeros(0, np.int64),
            pretrust=np.zeros(0),
            video_id=np.zeros(0, np.int64),
            vouch=np.zeros((0, 2), np.int64),
            private=np.zeros((0, 2), np.int64),
            slot_item=np.zeros(0, np.int32),
            slot_user=np.zeros(0, np.int32),
            slot_video=np.zeros(0, np.int32),
            item_video=np.zeros(0, np.int32),
            item_crit=np.zeros(0, np.int32),
            row_a=np.zeros(0, np.int32),
            row_b=np.zeros(0, np.int32),
            row_r=np.zeros(0),
            row_active=np.zeros(0, bool),
            theta=np.zeros(0),
            rho=np.zeros(0),
        )

    # ------------------------------------------------------------------ build
    def _rebuild(self, **s) -> None:
        """(Re)create every derived structure from the canonical arrays of ``state()``."""
        hp = self.hp
        U, V = len(s["user_id"]), len(s["video_id"])
        S, n_items, R = len(s["slot_item"]), len(s["item_video"]), len(s["row_a"])
        self.users = _Users(id=np.int64, pretrust=np.float64, trust=np.float64)
        self.users.extend(U, id=s["user_id"], pretrust=s["pretrust"])
        self._uid = dict(zip(s["user_id"].tolist(), range(U), strict=True))
        self.videos = _Videos(id=np.int64)
        self.videos.extend(V, id=s["video_id"])
        self._vid = dict(zip(s["video_id"].tolist(), range(V), strict=True))
        self.vouches: set[tuple[int, int]] = set(map(tuple, s["vouch"].tolist()))
        self.private: set[tuple[int, int]] = set(map(tuple, s["private"].tolist()))

        self.items = _Items(
            video=np.int32, crit=np.int32, rho=np.float64, prec=np.float64,
            ncontrib=np.int32, ncomp=np.int32,
        )  # fmt: skip
        self.items.extend(n_items, video=s["item_video"], crit=s["item_crit"], rho=s["rho"])
        self.slots = _Slots(
            item=np.int32, user=np.int32, video=np.int32, cnt=np.int32,
            p=np.float64, vr=np.float64, w=np.float64, theta=np.float64, prec=np.float64,
        )  # fmt: skip
        self.slots.extend(
            S, item=s["slot_item"], user=s["slot_user"], video=s["slot_video"], theta=s["theta"]
        )
        self.rows = _Rows(a=np.int32, b=np.int32, r=np.float64, active=bool)
        self.rows.extend(R, a=s["row_a"], b=s["row_b"], r=s["row_r"], active=s["row_active"])

        crit = s["item_crit"].astype(np.int64)
        sc = crit[s["slot_item"]] if S else np.zeros(0, np.int64)
        su, sv = s["slot_user"].astype(np.int64), s["slot_video"].astype(np.int64)
        self._slot = dict(zip(((((su << _VBITS) | sv) << 4) | sc).tolist(), range(S), strict=True))
        self._item = dict(
            zip(
                ((s["item_video"].astype(np.int64) << 4) | crit).tolist(),
                range(n_items),
                strict=True,
            )
        )
        ra, rb = s["row_a"].astype(np.int64), s["row_b"].astype(np.int64)
        if R:
            ru, rva, rvb, rc = su[ra], sv[ra], sv[rb], sc[ra]
            keys = [
                ((((u << _VBITS) | a) << _VBITS | b) << 4) | c
                for u, a, b, c in zip(
                    ru.tolist(), rva.tolist(), rvb.tolist(), rc.tolist(), strict=True
                )
            ]
            self._row: dict[int, int] = dict(zip(keys, range(R), strict=True))
        else:
            self._row = {}

        self._slot_rows = Adjacency(np.r_[ra, rb], np.r_[np.arange(R), np.arange(R)], S)
        self._item_slots = Adjacency(s["slot_item"], np.arange(S), n_items)
        self._user_slots = Adjacency(s["slot_user"], np.arange(S), U)

        act = s["row_active"]
        n = np.bincount(ra[act], minlength=S) + np.bincount(rb[act], minlength=S)
        self.slots.cnt[:S] = n
        if self.private and S:
            pk = np.array(sorted(u << _VBITS | v for u, v in self.private), np.int64)
            hit = _lookup(pk, (su << _VBITS) | sv, -1) >= 0
            self.slots.p[:S] = np.where(hit, hp.privacy_penalty, 1.0)
        else:
            self.slots.p[:S] = 1.0
        self.items.ncontrib[:n_items] = np.bincount(
            s["slot_item"], weights=n > 0, minlength=n_items
        )
        self.items.ncomp[:n_items] = np.bincount(s["slot_item"], weights=n, minlength=n_items)
        self._recompute_trust()
        self._refresh_weights(None)
        # Laplace precision of the prior alone until the first fit / online solve
        self.slots.prec[:S] = 1.0 / hp.sigma**2
        self.items.prec[:n_items] = hp.nu
        self._solver: OnlineSolver | None = None  # built lazily (imports TensorFlow)
        # (method, args) of every local solve while a background refit runs (refit.py)
        self._solve_log: list[tuple[str, tuple]] | None = None
        self._rater_change: set[int] = set()  # items whose rater set changed in this event

    def load(
        self,
        comparisons,
        pretrust: Mapping[int, float] | None = None,
        vouches: Iterable[tuple[int, int]] = (),
        private: Iterable[tuple[int, int]] = (),
    ) -> None:
        """Replace the state with these comparisons (no fit; scores start at 0)."""
        cmp = np.asarray(
            comparisons if isinstance(comparisons, np.ndarray) else list(comparisons), np.int64
        ).reshape(-1, 6)
        pretrust = dict(pretrust or {})
        vouches = np.asarray(list(vouches), np.int64).reshape(-1, 2)
        private = np.asarray(list(private), np.int64).reshape(-1, 2)
        uu, va, vb, c, score, smax = cmp.T
        if np.any((c < 0) | (c >= N_CRITERIA)):
            raise ValueError("criterion index out of range")
        if np.any(smax <= 0) or np.any(np.abs(score) > smax):
            raise ValueError("score outside [-score_max, score_max]")
        keep = va != vb
        uu, va, vb, c, score, smax = (x[keep] for x in (uu, va, vb, c, score, smax))

        user_id = np.unique(
            np.r_[uu, np.fromiter(pretrust.keys(), np.int64, len(pretrust)),
                  vouches.ravel(), private[:, 0]]
        )  # fmt: skip
        video_id = np.unique(np.r_[va, vb, private[:, 1]])
        u = np.searchsorted(user_id, uu)
        a, b = np.searchsorted(video_id, va), np.searchsorted(video_id, vb)
        r = score / smax
        swap = a > b
        a, b = np.where(swap, b, a), np.where(swap, a, b)
        r = np.where(swap, -r, r)
        # one row per (user, pair, criterion): the last one wins
        order = np.lexsort((-np.arange(len(u)), c, b, a, u))
        u, a, b, c, r = u[order], a[order], b[order], c[order], r[order]
        first = np.r_[
            True, (np.diff(u) != 0) | (np.diff(a) != 0) | (np.diff(b) != 0) | (np.diff(c) != 0)
        ][: len(u)]  # fmt: skip  (no rows: none kept)
        u, a, b, c, r = u[first], a[first], b[first], c[first], r[first]
        # slots: unique (criterion, user, video) over both endpoints
        sk = np.r_[((u << _VBITS) | a) << 4 | c, ((u << _VBITS) | b) << 4 | c]
        skeys, sinv = np.unique(sk, return_inverse=True)
        R = len(u)
        slot_user = (skeys >> (4 + _VBITS)).astype(np.int32)
        slot_video = ((skeys >> 4) & ((1 << _VBITS) - 1)).astype(np.int32)
        slot_crit = (skeys & 15).astype(np.int64)
        ik = (slot_video.astype(np.int64) << 4) | slot_crit
        ikeys, slot_item = np.unique(ik, return_inverse=True)
        pt = np.zeros(len(user_id))
        if pretrust:
            pt[np.searchsorted(user_id, list(pretrust.keys()))] = list(pretrust.values())
        vouch_idx = np.unique(np.searchsorted(user_id, vouches), axis=0).reshape(-1, 2)
        priv_idx = np.c_[np.searchsorted(user_id, private[:, 0]),
                         np.searchsorted(video_id, private[:, 1])]  # fmt: skip
        self._rebuild(
            user_id=user_id, pretrust=pt, video_id=video_id,
            vouch=vouch_idx, private=priv_idx.reshape(-1, 2),
            slot_item=slot_item.astype(np.int32), slot_user=slot_user, slot_video=slot_video,
            item_video=(ikeys >> 4).astype(np.int32), item_crit=(ikeys & 15).astype(np.int32),
            row_a=sinv[:R].astype(np.int32), row_b=sinv[R:].astype(np.int32),
            row_r=r.astype(np.float64), row_active=np.ones(R, bool),
            theta=np.zeros(len(skeys)), rho=np.zeros(len(ikeys)),
        )  # fmt: skip

    # ------------------------------------------------------------------ trust
    def _recompute_trust(self) -> np.ndarray:
        """Recompute every trust; returns the indices of users whose trust changed."""
        U = self.users.n
        old = self.users.trust[:U].copy()
        v = np.array(sorted(self.vouches), np.int64).reshape(-1, 2)
        t = propagate_trust(
            self.users.pretrust[:U], v[:, 0], v[:, 1], self.hp.trust_decay, self.hp.sink_vouch
        )
        self.users.trust[:U] = t
        return np.flatnonzero(np.abs(t - old) > 1e-12)

    def _refresh_weights(self, items) -> None:
        """Voting rights and pull weights of every slot of ``items`` (None: all)."""
        hp = self.hp
        if items is not None and len(items) <= 8:  # online events: one group at a time
            for i in items:
                self._refresh_item_weights(int(i))
            return
        sl = np.arange(self.slots.n) if items is None else self._item_slots.get_many(items)
        if len(sl) == 0:
            return
        n = self.slots.cnt[sl]
        live = n > 0
        vr = np.zeros(len(sl))
        if live.any():
            s = sl[live]
            grp_items, grp = np.unique(self.slots.item[s], return_inverse=True)
            vr[live] = voting_rights(
                grp, self.users.trust[self.slots.user[s]], self.slots.p[s], len(grp_items),
                hp.overtrust_ratio, hp.min_overtrust, hp.untrusted_budget,
            )  # fmt: skip
        self.slots.vr[sl] = vr
        self.slots.w[sl] = vr * n / (hp.C + n)

    def _refresh_item_weights(self, i: int) -> None:
        """``_refresh_weights`` of one item (the same arithmetic, without grouping)."""
        hp = self.hp
        sl = self._item_slots.get(i)
        n = self.slots.cnt[sl]
        live = n > 0
        s = sl[live]
        self.slots.vr[sl[~live]] = 0.0
        self.slots.w[sl[~live]] = 0.0
        if len(s) == 0:
            return
        vr = voting_rights_one(
            self.users.trust[self.slots.user[s]], self.slots.p[s],
            hp.overtrust_ratio, hp.min_overtrust, hp.untrusted_budget,
        )  # fmt: skip
        ns = n[live]
        self.slots.vr[s] = vr
        self.slots.w[s] = vr * ns / (hp.C + ns)

    # ------------------------------------------------------------------ growth
    def _user(self, user_id: int) -> int:
        u = self._uid.get(user_id)
        if u is None:
            u = self.users.append(id=user_id, pretrust=0.0, trust=0.0)
            self._uid[user_id] = u
        return u

    def _video(self, video_id: int) -> int:
        v = self._vid.get(video_id)
        if v is None:
            v = self.videos.append(id=video_id)
            self._vid[video_id] = v
        return v

    def _item_of(self, c: int, v: int) -> int:
        key = (v << 4) | c
        i = self._item.get(key)
        if i is None:
            i = self.items.append(video=v, crit=c, prec=self.hp.nu)
            self._item[key] = i
        return i

    def _slot_of(self, c: int, u: int, v: int) -> int:
        key = _slot_key(c, u, v)
        s = self._slot.get(key)
        if s is None:
            i = self._item_of(c, v)
            p = self.hp.privacy_penalty if (u, v) in self.private else 1.0
            s = self.slots.append(item=i, user=u, video=v, p=p, prec=1.0 / self.hp.sigma**2)
            self._slot[key] = s
            self._item_slots.add(i, s)
            self._user_slots.add(u, s)
        return s

    def _bump(self, s: int, delta: int) -> None:
        old = int(self.slots.cnt[s])
        new = old + delta
        self.slots.cnt[s] = new
        i = self.slots.item[s]
        self.items.ncomp[i] += delta
        if old == 0 and new > 0:
            self.items.ncontrib[i] += 1
            self._rater_change.add(int(i))
        elif old > 0 and new == 0:
            self.items.ncontrib[i] -= 1
            self._rater_change.add(int(i))
        elif new > 0:  # same raters: only this slot's n/(C+n) factor moves
            self.slots.w[s] = self.slots.vr[s] * new / (self.hp.C + new)

    # ------------------------------------------------------------------ solver
    @property
    def solver(self):
        if self._solver is None:
            from app.learner.online import OnlineSolver, capacity_for

            self._solver = OnlineSolver(
                capacity_for(self.slots.n), capacity_for(self.items.n), self.hp.online_steps
            )
            self._solver.assign(self.slots.view("theta"), self.items.view("rho"))
        return self._solver

    def warm_up(self) -> None:
        """Trace the online solver and the full fit now (before serving): neither
        the first event nor the first refit after a restore then pays for tracing."""
        from app.learner.fit import warm_up

        self.solver.warm_up()
        warm_up(self.hp)

    def solver_needs_room(self) -> bool:
        """Whether the online solver's variables are past their headroom (then a
        refit builds and warms a bigger one off the worker)."""
        return self._solver is not None and self._solver.needs_room(self.slots.n, self.items.n)

    @property
    def trace_count(self) -> int:
        """Traces of the online tf.function so far (for no-retrace tests)."""
        return 0 if self._solver is None else self._solver.traces

    def _hp_array(self) -> np.ndarray:
        hp = self.hp
        return np.array([hp.lam, hp.nu, hp.delta, hp.sigma])

    def _solve_local(self, block: np.ndarray, items: np.ndarray) -> None:
        """Exact-Newton re-solve of θ[block] and ρ[items], everything else fixed.

        Terms: every row incident to a block slot, the pulls of the block slots (to
        their items, free or fixed), and the pulls of every other live rater of the
        free items (their θ fixed, gathered device-side by index). Exact: nothing is
        summarised, so a crowded item costs one gather of its raters' θ.
        """
        block = np.unique(np.asarray(block, np.int64))
        items = np.unique(np.asarray(items, np.int64))
        if self._solve_log is not None:
            self._solve_log.append(("_solve_local", (block, items)))
        sv = self.solver
        sv.ensure_capacity(self.slots.n, self.items.n)
        ps = self._item_slots.get_many(items)
        ps = ps[self.slots.w[ps] > 0]
        if len(block) == 0:
            y, py = sv.items_only(
                items, ps, self.slots.item[ps], self.slots.w[ps], self._hp_array()
            )
            self.items.rho[items] = y
            self.items.prec[items] = py
            return
        bitem = self.slots.item[block].astype(np.int64)
        # the block's own slots on free items are free, not fixed raters: drop them
        ps = ps[~np.isin(ps, block)]
        rows = self._slot_rows.get_many(block)
        rows = np.unique(rows[self.rows.active[rows]])
        out, prec = sv.block(
            block, items, self.rows.a[rows], self.rows.b[rows], self.rows.r[rows],
            block, bitem, self.slots.w[block],
            ps, np.searchsorted(items, self.slots.item[ps]), self.slots.w[ps],
            self._hp_array(),
        )  # fmt: skip
        B = len(block)
        self.slots.theta[block] = out[:B]
        self.slots.prec[block] = prec[:B]
        self.items.rho[items] = out[B:]
        self.items.prec[items] = prec[B:]

    def _neighbourhood(self, primary: list[int]) -> list[int]:
        """The block of an event on ``primary`` (two slots of one contributor, one criterion).

        All of the contributor's live slots on that criterion when they fit in
        ``online_max_block`` (then θ's only drift is through ρ), else the primary
        slots and their direct neighbours in the contributor's comparisons, capped.
        """
        cap = max(self.hp.online_max_block, len(primary))
        s0 = primary[0]
        mine = self._user_slots.get(int(self.slots.user[s0]))
        if len(mine) <= 4 * cap:
            crit = self.items.crit[self.slots.item[mine]]
            mine = mine[(crit == self.items.crit[self.slots.item[s0]]) & (self.slots.cnt[mine] > 0)]
            if len(mine) <= cap:
                return list(dict.fromkeys([*primary, *mine.tolist()]))
        out = dict.fromkeys(primary)
        for s in primary:
            rows = self._slot_rows.get(s)
            rows = rows[self.rows.active[rows]]
            other = np.where(self.rows.a[rows] == s, self.rows.b[rows], self.rows.a[rows])
            for o in other.tolist():
                if len(out) >= cap:
                    return list(out)
                out.setdefault(o)
        return list(out)

    # ------------------------------------------------------------------ fit
    def fit(self, progress: Callable[[int, float, float], None] | None = None):
        """Full warm-started Newton-CG fit of every criterion; returns a FitReport."""
        from app.learner import objective as obj
        from app.learner.fit import hp_tensor, newton_fit

        act = self.rows.view("active")
        ra, rb, r = self.rows.view("a")[act], self.rows.view("b")[act], self.rows.view("r")[act]
        si, w = self.slots.view("item"), self.slots.view("w")
        theta, rho, rep = newton_fit(
            self.slots.view("theta"), self.items.view("rho"), ra, rb, r, si, w, self.hp, progress
        )
        self.slots.theta[: self.slots.n] = theta
        self.items.rho[: self.items.n] = rho
        dt, dr = obj.hessian_diag(theta, rho, ra, rb, r, si, w, hp_tensor(self.hp))
        self.slots.prec[: self.slots.n] = dt.numpy()
        self.items.prec[: self.items.n] = dr.numpy()
        sv = self.solver
        sv.ensure_capacity(self.slots.n, self.items.n)
        sv.assign(theta, rho)
        return rep

    # ------------------------------------------------------------------ events
    def upsert_comparison(
        self, user: int, video_a: int, video_b: int, scores: Mapping[int, tuple[int, int]]
    ) -> Changed:
        """Create or update u's comparison of the pair; criteria not in ``scores`` are removed."""
        if video_a == video_b:
            raise ValueError("a comparison needs two different videos")
        for c, (score, smax) in scores.items():
            if not 0 <= c < N_CRITERIA:
                raise ValueError(f"criterion index out of range: {c}")
            if smax <= 0 or abs(score) > smax:
                raise ValueError(f"score {score} outside [-{smax}, {smax}]")
        u = self._user(user)
        a, b = self._video(video_a), self._video(video_b)
        sign = 1.0
        if a > b:
            a, b, sign = b, a, -1.0
        touched = []
        for c in range(N_CRITERIA):
            key = _row_key(u, a, b, c)
            row = self._row.get(key)
            if c in scores:
                score, smax = scores[c]
                r = sign * score / smax
                if row is None:
                    sa, sb = self._slot_of(c, u, a), self._slot_of(c, u, b)
                    row = self.rows.append(a=sa, b=sb, r=r, active=True)
                    self._row[key] = row
                    self._slot_rows.add(sa, row)
                    self._slot_rows.add(sb, row)
                    self._bump(sa, 1)
                    self._bump(sb, 1)
                else:
                    if not self.rows.active[row]:
                        self.rows.active[row] = True
                        self._bump(self.rows.a[row], 1)
                        self._bump(self.rows.b[row], 1)
                    self.rows.r[row] = r
                touched.append((c, row))
            elif row is not None and self.rows.active[row]:
                self.rows.active[row] = False
                self._bump(self.rows.a[row], -1)
                self._bump(self.rows.b[row], -1)
                touched.append((c, row))
        return self._after_pair(user, a, b, touched)

    def delete_comparison(self, user: int, video_a: int, video_b: int) -> Changed:
        """Remove u's comparison of the pair on every criterion (no-op if absent)."""
        if user not in self._uid or video_a not in self._vid or video_b not in self._vid:
            return Changed(set(), user)
        return self.upsert_comparison(user, video_a, video_b, {})

    def _after_pair(self, user: int, a: int, b: int, touched) -> Changed:
        if not touched:
            return Changed(set(), user)
        items: list[int] = []
        near: list[int] = []
        for c, row in touched:
            items += [self._item[(a << 4) | c], self._item[(b << 4) | c]]
            near += self._neighbourhood([int(self.rows.a[row]), int(self.rows.b[row])])
        # voting rights depend on the rater set: recompute them only where it changed
        self._refresh_weights(sorted(self._rater_change))
        self._rater_change.clear()
        block, free = self._grow_block(near, items)
        before = self.items.rho[free].copy(), self.items.prec[free].copy()
        self._solve_local(block, free)
        # report (for publishing) the compared videos and the neighbours that moved
        moved = (np.abs(self.items.rho[free] - before[0]) > PUBLISH_EPS) | (
            np.abs(self.items.prec[free] - before[1]) > PUBLISH_EPS * before[1]
        )
        out = np.union1d(np.asarray(items, np.int64), free[moved])
        for c in dict.fromkeys(c for c, _ in touched):
            out = np.union1d(out, self._sweep(self._uid[user], c, block))
        return Changed(self._item_names(out), user)

    def _sweep(self, u: int, c: int, block: np.ndarray) -> np.ndarray:
        """A contributor with more slots than a block holds: their other personal
        scores respond to the new comparison too, across their whole comparison graph
        (on the demo data a heavy contributor's comparison moved 270 of their θ by
        more than 0.005, and the thin videos' ρ with them by up to 0.5 display points).
        One Newton step on all their θ of criterion c (ρ fixed, conjugate gradients on
        their comparison Laplacian), then the ρ of the videos whose θ moved.
        Returns those items."""
        mine = self._user_slots.get(u)
        mine = mine[(self.slots.cnt[mine] > 0) & (self.items.crit[self.slots.item[mine]] == c)]
        if len(mine) <= len(block):
            return np.zeros(0, np.int64)
        if self._solve_log is not None:
            self._solve_log.append(("_sweep", (u, c, block)))
            log, self._solve_log = self._solve_log, None  # its own solves replay with it
            try:
                return self._sweep_slots(mine)
            finally:
                self._solve_log = log
        return self._sweep_slots(mine)

    def _sweep_slots(self, mine: np.ndarray) -> np.ndarray:
        mine = np.sort(mine)
        rows = np.unique(self._slot_rows.get_many(mine))
        rows = rows[self.rows.active[rows]]
        old = self.slots.theta[mine].copy()
        new = self.solver.sweep(
            mine, self.slots.item[mine],
            np.searchsorted(mine, self.rows.a[rows]), np.searchsorted(mine, self.rows.b[rows]),
            self.rows.r[rows], self.slots.w[mine], self._hp_array(),
        )  # fmt: skip
        self.slots.theta[mine] = new
        moved = self.slots.item[mine[np.abs(new - old) > SWEEP_MOVED]].astype(np.int64)
        if len(moved):
            self._solve_local(np.zeros(0, np.int64), moved)
        return moved

    def _grow_block(self, slots: list[int], items: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Breadth-first from ``slots`` and ``items`` through comparisons (slot–slot)
        and pulls (slot–item), up to ``BLOCK_SLOTS`` θ and ``BLOCK_ITEMS`` ρ.

        Nearest first, because a change decays along the graph: a rater of a moved
        item follows it, then that rater's neighbours in their own comparisons, etc.
        """
        block = dict.fromkeys(int(s) for s in slots)
        free = dict.fromkeys(int(i) for i in items)
        queue = [(True, s) for s in block] + [(False, i) for i in free]
        head = 0
        while head < len(queue) and (len(block) < BLOCK_SLOTS or len(free) < BLOCK_ITEMS):
            is_slot, x = queue[head]
            head += 1
            if is_slot:
                i = int(self.slots.item[x])
                # a crowded neighbour video stays fixed: one of its many raters moved
                # little, and freeing it would cost a gather of all its raters
                crowded = self.items.ncontrib[i] > BLOCK_FANOUT
                if i not in free and len(free) < BLOCK_ITEMS and not crowded:
                    free[i] = None
                    queue.append((False, i))
                rows = self._slot_rows.get(x)
                rows = rows[self.rows.active[rows]]
                if len(rows) > BLOCK_FANOUT:
                    continue
                nbrs = np.where(self.rows.a[rows] == x, self.rows.b[rows], self.rows.a[rows])
            else:
                nbrs = self._item_slots.get(x)
                if len(nbrs) > BLOCK_FANOUT:
                    continue
                nbrs = nbrs[self.slots.cnt[nbrs] > 0]
            for s in nbrs.tolist():
                if len(block) >= BLOCK_SLOTS:
                    break
                if s not in block:
                    block[s] = None
                    queue.append((True, s))
        return np.fromiter(block, np.int64, len(block)), np.fromiter(free, np.int64, len(free))

    def set_pretrust(self, user: int, value: float) -> Changed:
        u = self._user(user)
        self.users.pretrust[u] = float(np.clip(value, 0.0, 1.0))
        return self._after_trust(user)

    def set_vouch(self, voucher: int, vouchee: int, active: bool) -> Changed:
        pair = (self._user(voucher), self._user(vouchee))
        if active:
            self.vouches.add(pair)
        else:
            self.vouches.discard(pair)
        return self._after_trust(voucher)

    def _after_trust(self, user: int) -> Changed:
        """Trust moved across the graph: new voting rights, re-solve the ρ they touch.

        θ of the users whose trust changed are left for the next refit (their
        blocks can be their whole history).
        """
        changed = self._recompute_trust()
        if len(changed) == 0:
            return Changed(set(), user)
        sl = self._user_slots.get_many(changed)
        items = np.unique(self.slots.item[sl[self.slots.cnt[sl] > 0]])
        self._refresh_weights(items)
        self._solve_local(np.zeros(0, np.int64), items)
        return Changed(self._item_names(items), user)

    def set_visibility(self, user: int, video: int, is_public: bool) -> Changed:
        """Private ratings weigh ``privacy_penalty`` (0.5) in the voting rights."""
        u, v = self._user(user), self._video(video)
        if is_public:
            self.private.discard((u, v))
        else:
            self.private.add((u, v))
        p = 1.0 if is_public else self.hp.privacy_penalty
        sl = np.array([self._slot[k] for c in range(N_CRITERIA)
                       if (k := _slot_key(c, u, v)) in self._slot], np.int64)  # fmt: skip
        if len(sl) == 0:
            return Changed(set(), user)
        self.slots.p[sl] = p
        items = self.slots.item[sl]
        self._refresh_weights(items)
        self._solve_local(sl, items)
        return Changed(self._item_names(items), user)

    def _item_names(self, items) -> set[tuple[int, int]]:
        items = np.asarray(items, np.int64)
        crit = self.items.crit[items].tolist()
        vids = self.videos.id[self.items.video[items]].tolist()
        return set(zip(crit, vids, strict=True))

    # ------------------------------------------------------------------ reads
    def video_scores(self, criterion_idx: int):
        """(video_ids, raw, uncertainty, n_contributors, n_comparisons) of rated videos."""
        n = self.items.n
        m = (self.items.crit[:n] == criterion_idx) & (self.items.ncontrib[:n] > 0)
        return (
            self.videos.id[self.items.video[:n][m]],
            self.items.rho[:n][m].copy(),
            1.0 / np.sqrt(self.items.prec[:n][m]),
            self.items.ncontrib[:n][m].copy(),
            self.items.ncomp[:n][m].copy(),
        )

    def video_score(self, video_id: int) -> dict[int, tuple[float, float, int, int]]:
        v = self._vid.get(video_id)
        out: dict[int, tuple[float, float, int, int]] = {}
        if v is None:
            return out
        for c in range(N_CRITERIA):
            i = self._item.get((v << 4) | c)
            if i is not None and self.items.ncontrib[i] > 0:
                it = self.items
                out[c] = (
                    float(it.rho[i]), float(1.0 / np.sqrt(it.prec[i])),
                    int(it.ncontrib[i]), int(it.ncomp[i]),
                )  # fmt: skip
        return out

    def contributor_scores(self, user_id: int) -> list[tuple[int, int, float, float]]:
        u = self._uid.get(user_id)
        if u is None:
            return []
        sl = self._user_slots.get(u)
        sl = sl[self.slots.cnt[sl] > 0]
        sl = sl[np.lexsort((self.items.crit[self.slots.item[sl]], self.slots.video[sl]))]
        vids = self.videos.id[self.slots.video[sl]].tolist()
        crit = self.items.crit[self.slots.item[sl]].tolist()
        raw = self.slots.theta[sl].tolist()
        unc = (1.0 / np.sqrt(self.slots.prec[sl])).tolist()
        return list(zip(vids, crit, raw, unc, strict=True))

    def trust(self, user_id: int) -> float:
        u = self._uid.get(user_id)
        return 0.0 if u is None else float(self.users.trust[u])

    def sum_trust(self, video_id: int, criterion_idx: int) -> float:
        """Σ trust of the contributors who compared the video on that criterion."""
        v = self._vid.get(video_id)
        i = None if v is None else self._item.get((v << 4) | criterion_idx)
        if i is None:
            return 0.0
        sl = self._item_slots.get(i)
        sl = sl[self.slots.cnt[sl] > 0]
        return float(self.users.trust[self.slots.user[sl]].sum())

    def user_ids(self) -> list[int]:
        """Database ids of every contributor the learner knows."""
        return self.users.view("id").tolist()

    def voting_right(self, user_id: int, video_id: int, criterion_idx: int) -> float:
        """vr_uv of DESIGN.md §4 (before the n/(C+n) factor); 0 when u never rated v."""
        u, v = self._uid.get(user_id), self._vid.get(video_id)
        s = None if u is None or v is None else self._slot.get(_slot_key(criterion_idx, u, v))
        if s is None or self.slots.cnt[s] == 0:
            return 0.0
        n = float(self.slots.cnt[s])
        return float(self.slots.w[s] * (self.hp.C + n) / n)

    # ------------------------------------------------------------------ persistence
    @property
    def counts(self) -> dict[str, int]:
        return {
            "users": self.users.n, "videos": self.videos.n, "slots": self.slots.n,
            "items": self.items.n, "rows": self.rows.n,
            "active_rows": int(self.rows.view("active").sum()),
        }  # fmt: skip

    def state(self) -> dict[str, np.ndarray]:
        """Canonical arrays (copies); ``Learner.from_state`` rebuilds everything else."""
        return {
            "user_id": self.users.view("id").copy(),
            "pretrust": self.users.view("pretrust").copy(),
            "video_id": self.videos.view("id").copy(),
            "vouch": np.array(sorted(self.vouches), np.int64).reshape(-1, 2),
            "private": np.array(sorted(self.private), np.int64).reshape(-1, 2),
            "slot_item": self.slots.view("item").copy(),
            "slot_user": self.slots.view("user").copy(),
            "slot_video": self.slots.view("video").copy(),
            "item_video": self.items.view("video").copy(),
            "item_crit": self.items.view("crit").copy(),
            "row_a": self.rows.view("a").copy(),
            "row_b": self.rows.view("b").copy(),
            "row_r": self.rows.view("r").copy(),
            "row_active": self.rows.view("active").copy(),
            "theta": self.slots.view("theta").copy(),
            "rho": self.items.view("rho").copy(),
        }

    STATE_KEYS = (
        "user_id", "pretrust", "video_id", "vouch", "private", "slot_item", "slot_user",
        "slot_video", "item_video", "item_crit", "row_a", "row_b", "row_r", "row_active",
        "theta", "rho",
    )  # fmt: skip

    @classmethod
    def from_state(
        cls,
        hparams: HParams,
        state: Mapping[str, np.ndarray],
        precision: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Learner:
        """Rebuild a learner from ``state()``. The Laplace precisions (θ's, ρ's) are
        ``precision`` when given (a checkpoint stores them: restoring then needs no
        TensorFlow graph but the online solver's), else recomputed."""
        self = cls.__new__(cls)
        self.hp = hparams
        self._rebuild(**{k: np.asarray(state[k]) for k in cls.STATE_KEYS})
        if precision is not None and (len(precision[0]), len(precision[1])) == (
            self.slots.n, self.items.n,
        ):  # fmt: skip
            self.slots.prec[: self.slots.n] = precision[0]
            self.items.prec[: self.items.n] = precision[1]
        else:
            self._refresh_precision()
        return self

    def precision(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the Laplace precisions of θ and ρ (``from_state``'s ``precision``)."""
        return self.slots.view("prec").copy(), self.items.view("prec").copy()

    def _refresh_precision(self) -> None:
        from app.learner import objective as obj
        from app.learner.fit import hp_tensor

        act = self.rows.view("active")
        dt, dr = obj.hessian_diag(
            self.slots.view("theta"), self.items.view("rho"),
            self.rows.view("a")[act], self.rows.view("b")[act], self.rows.view("r")[act],
            self.slots.view("item"), self.slots.view("w"), hp_tensor(self.hp),
        )  # fmt: skip
        self.slots.prec[: self.slots.n] = dt.numpy()
        self.items.prec[: self.items.n] = dr.numpy()

    def save_checkpoint(self, directory, watermark: int):
        from app.learner.checkpoint import save

        return save(self, directory, watermark)

    @classmethod
    def restore_checkpoint(cls, directory, hparams: HParams) -> tuple[Learner, int]:
        from app.learner.checkpoint import restore

        return restore(cls, directory, hparams)
