"""Background refits in place: fit a copy of the arrays, then write the optimum back.

A refit used to rebuild a whole second ``Learner`` from ``state()`` and swap it in;
at 1M rows the rebuild alone (Python dicts of 1.4M slots and 1M rows) took ~7 s of
the GIL, on every refit. Now:

1. ``snapshot(learner)`` (on the worker): copies of the arrays J depends on (θ, ρ,
   active rows, slot items, pull weights) and of what the score views need, and the
   learner starts logging the blocks its online updates solve;
2. ``fit(snapshot)`` (any thread): warm-started Newton-CG to the tolerance and the
   Laplace precisions, in TensorFlow, on those copies only;
3. ``install(learner, snapshot, result)`` (on the worker): θ, ρ and precisions of
   everything that existed at the snapshot take the fitted values, and the ρ of
   items whose pull weights changed since (trust, voting rights, new raters) are
   re-solved; then ``replay`` re-solves, with today's structure, every block (and
   contributor sweep) an online update solved since the snapshot, in order. That
   is what replaying the events on the fitted copy did, without a second learner.
   The replay can run in slices (the service's swap does, so that events arriving
   meanwhile wait for one slice, not for all of it); ``adopt`` is both in one go.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Progress = Callable[[int, float, float], None]


@dataclass(frozen=True)
class Snapshot:
    theta: np.ndarray
    rho: np.ndarray
    ra: np.ndarray  # active rows
    rb: np.ndarray
    r: np.ndarray
    slot_item: np.ndarray
    w: np.ndarray
    slot_user_id: np.ndarray  # database ids, per slot
    item_video_id: np.ndarray  # database ids, per item
    item_crit: np.ndarray
    ncontrib: np.ndarray
    ncomp: np.ndarray
    prec_theta: np.ndarray
    prec_rho: np.ndarray


@dataclass(frozen=True)
class Result:
    theta: np.ndarray
    rho: np.ndarray
    prec_theta: np.ndarray
    prec_rho: np.ndarray
    report: Any  # app.learner.fit.FitReport


def snapshot(learner: Any) -> Snapshot:
    """Copies of what a fit and the score views need; starts the solve log."""
    act = learner.rows.view("active")
    slots, items = learner.slots, learner.items
    learner._solve_log = []
    return Snapshot(
        theta=slots.view("theta").copy(),
        rho=items.view("rho").copy(),
        ra=learner.rows.view("a")[act],
        rb=learner.rows.view("b")[act],
        r=learner.rows.view("r")[act],
        slot_item=slots.view("item").copy(),
        w=slots.view("w").copy(),
        slot_user_id=learner.users.id[slots.view("user")],
        item_video_id=learner.videos.id[items.view("video")],
        item_crit=items.view("crit").copy(),
        ncontrib=items.view("ncontrib").copy(),
        ncomp=items.view("ncomp").copy(),
        prec_theta=slots.view("prec").copy(),
        prec_rho=items.view("prec").copy(),
    )


def fit(hp: Any, snap: Snapshot, progress: Progress | None = None) -> Result:
    """Warm-started full fit of the snapshot, and its Laplace precisions."""
    from app.learner import objective as obj
    from app.learner.fit import hp_tensor, newton_fit

    theta, rho, report = newton_fit(
        snap.theta, snap.rho, snap.ra, snap.rb, snap.r, snap.slot_item, snap.w, hp, progress
    )
    dt, dr = obj.hessian_diag(
        theta, rho, snap.ra, snap.rb, snap.r, snap.slot_item, snap.w, hp_tensor(hp)
    )
    return Result(theta, rho, dt.numpy(), dr.numpy(), report)


def abandon(learner: Any) -> None:
    """The refit failed or was cancelled: stop logging solves."""
    learner._solve_log = None


def install(learner: Any, snap: Snapshot, res: Result) -> tuple[np.ndarray, list]:
    """Write the fit into ``learner`` and re-solve the items whose pull weights moved
    since the snapshot. Returns (those items, the online solves logged since the
    snapshot): :func:`replay` re-solves them on top, in order."""
    log, learner._solve_log = learner._solve_log or [], None
    S, n_items = len(res.theta), len(res.rho)
    learner.slots.theta[:S] = res.theta
    learner.slots.prec[:S] = res.prec_theta
    learner.items.rho[:n_items] = res.rho
    learner.items.prec[:n_items] = res.prec_rho
    learner.solver.assign(learner.slots.view("theta"), learner.items.view("rho"))
    redo = np.zeros(0, np.int64)
    moved_w = np.flatnonzero(learner.slots.w[:S] != snap.w)
    if len(moved_w):
        redo = np.unique(learner.slots.item[moved_w]).astype(np.int64)
        learner._solve_local(np.zeros(0, np.int64), redo)
    return redo, log


def replay(learner: Any, log: list, budget: float = math.inf) -> tuple[np.ndarray, list]:
    """Re-solve the logged solves in order, for about ``budget`` seconds (at least
    one). Returns (the items re-solved, sorted and unique; what is left of ``log``)."""
    started = time.perf_counter()
    redo = np.zeros(0, np.int64)
    done = 0
    for method, args in log:  # _solve_local(block, items) or _sweep(u, c, block)
        items = getattr(learner, method)(*args)
        if method == "_solve_local":
            items = args[1]
        redo = np.union1d(redo, items)
        done += 1
        if time.perf_counter() - started >= budget:
            break
    return redo, log[done:]


def adopt(learner: Any, snap: Snapshot, res: Result) -> np.ndarray:
    """Install the fit and replay everything since its snapshot, in one go (see the
    module doc); returns the items (learner indices, sorted, unique) re-solved."""
    redo, log = install(learner, snap, res)
    items, _ = replay(learner, log)
    return np.union1d(redo, items)
