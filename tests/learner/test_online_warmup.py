"""Warm-up before serving: every graph an event or a refit runs is traced, and the
warm-up leaves the learner's state untouched (issue 9, item 5)."""

from __future__ import annotations

import numpy as np

from app.learner import objective as obj
from app.learner.hparams import HParams
from app.learner.model import Learner
from app.learner.online import OnlineSolver


def test_solver_warm_up_restores_the_variables_and_traces_each_function_once():
    sv = OnlineSolver(16, 16, 2)
    sv.theta.assign(np.arange(16.0))
    sv.rho.assign(-np.arange(16.0))
    sv.warm_up()
    assert sv.traces == 3
    np.testing.assert_array_equal(sv.theta.numpy(), np.arange(16.0))
    np.testing.assert_array_equal(sv.rho.numpy(), -np.arange(16.0))


def _fit_traces() -> int:
    fns = (obj.newton_direction, obj.value, obj.hessian_diag)
    return sum(f.experimental_get_tracing_count() for f in fns)


def test_no_trace_after_warm_up_for_events_or_refits(small):
    lr = Learner(HParams())
    lr.load(small)
    lr.fit()
    before = lr.state()
    lr.warm_up()
    after = lr.state()
    for key in ("theta", "rho"):
        np.testing.assert_array_equal(before[key], after[key])
    online, full = lr.trace_count, _fit_traces()
    lr.upsert_comparison(1, 101, 109, {0: (4, 10)})
    lr.upsert_comparison(99, 102, 150, {0: (-7, 10)})  # a new contributor and a new video
    lr.set_pretrust(2, 0.5)
    lr.fit()  # a refit after the events, on other shapes
    assert lr.trace_count == online, "an event after the warm-up traced the online solver"
    assert _fit_traces() == full, "a fit after the warm-up traced the objective"


def test_a_restored_learner_appends_its_first_events_without_copying_its_tables(small):
    """The first event after a restore must cost what the hundredth does: no table
    reallocated (each would copy every column of every row)."""
    lr = Learner(HParams())
    lr.load(small)
    restored = Learner.from_state(HParams(), lr.state())
    tables = (restored.users, restored.videos, restored.items, restored.slots, restored.rows)
    n_before = [t.n for t in tables]
    arrays = {id(getattr(t, k)) for t in tables for k in t._dtypes}
    restored.upsert_comparison(99, 102, 150, {0: (-7, 10)})  # new contributor, new video
    restored.upsert_comparison(99, 101, 150, {0: (3, 10)})
    assert sum(t.n for t in tables) > sum(n_before)  # rows were appended...
    assert {id(getattr(t, k)) for t in tables for k in t._dtypes} == arrays  # ...in place
