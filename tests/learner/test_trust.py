"""Trust propagation (LipschiTrust) and voting rights (AffineOvertrust), by hand."""

import numpy as np
import pytest

from app.learner.trust import overtrust_level, propagate_trust, voting_rights


def test_no_vouches_is_pretrust():
    assert propagate_trust(np.array([1.0, 0.3, 0.0]), [], []).tolist() == [1.0, 0.3, 0.0]


def test_chain_by_hand():
    # 0 (pretrust 1) vouches for 1 and 2; 1 vouches for 3.
    t = propagate_trust(np.array([1.0, 0.0, 0.0, 0.0]), [0, 0, 1], [1, 2, 3])
    t1 = 0.8 * 1.0 / (2 + 5)  # voucher 0 gave 2 vouches
    assert t[1] == pytest.approx(t1)
    assert t[2] == pytest.approx(t1)
    assert t[3] == pytest.approx(0.8 * t1 / (1 + 5))


def test_cycle_fixed_point_and_cap():
    # 0 ↔ 1 vouch for each other; 0 has pretrust 0.5: t0 = 0.5 + 0.8 t1/6, t1 = 0.8 t0/6
    t = propagate_trust(np.array([0.5, 0.0]), [0, 1], [1, 0])
    k = 0.8 / 6
    t0 = 0.5 / (1 - k * k)
    assert t[0] == pytest.approx(t0)
    assert t[1] == pytest.approx(k * t0)
    # capped at 1
    t = propagate_trust(np.array([1.0, 0.95]), [0], [1])
    assert t[1] == 1.0


def test_self_vouch_ignored():
    assert propagate_trust(np.array([0.2]), [0], [0]).tolist() == [0.2]


def test_overtrust_never_reached_gives_one():
    # 3 trusted raters: T = 3, budget 0.1*3+2 = 2.3; nobody below m ≤ 1 → m = 1
    m = overtrust_level(np.zeros(3, int), np.ones(3), np.ones(3), 1)
    assert m.tolist() == [1.0]


def test_overtrust_cap_by_hand():
    # one video: 1 trusted (t=1) and 10 untrusted (t=0) public raters.
    # T = 1, budget = 2.1; f(m) = 10·m for m ≤ 1 → m = 0.21
    trust = np.r_[1.0, np.zeros(10)]
    vr = voting_rights(np.zeros(11, int), trust, np.ones(11), 1)
    assert vr[0] == pytest.approx(1.0)
    assert vr[1:] == pytest.approx(np.full(10, 0.21))
    # the untrusted share exactly the budget
    assert vr[1:].sum() == pytest.approx(2.1)


def test_overtrust_private_and_partial_trust_by_hand():
    # raters t = [0.0 (private), 0.1, 0.5, 1.0]; p = [0.5, 1, 1, 1]
    # T = 0.1 + 0.5 + 1 = 1.6, budget = 2.16
    # f(m) on [0.5, 1]: 0.5 m + (m - 0.1) + (m - 0.5) = 2.5 m - 0.6 = 2.16 → m = 1.104 > 1
    # so m = 1 (budget never reached)
    t = np.array([0.0, 0.1, 0.5, 1.0])
    p = np.array([0.5, 1, 1, 1])
    assert overtrust_level(np.zeros(4, int), t, p, 1)[0] == 1.0
    vr = voting_rights(np.zeros(4, int), t, p, 1)
    assert vr.tolist() == pytest.approx([0.5, 1.0, 1.0, 1.0])
    # with 6 more untrusted public raters: P over the t=0 group = 6.5
    t2 = np.r_[t, np.zeros(6)]
    p2 = np.r_[p, np.ones(6)]
    # budget 2.16; f(m) = 6.5 m for m ≤ 0.1 → 0.65 < 2.16; on [0.1, 0.5]: 7.5 m − 0.1 → m = 0.3013
    m = overtrust_level(np.zeros(10, int), t2, p2, 1)[0]
    assert m == pytest.approx(2.26 / 7.5)
    vr = voting_rights(np.zeros(10, int), t2, p2, 1)
    assert vr[0] == pytest.approx(0.5 * m)
    assert vr[1] == pytest.approx(m)
    assert vr[2] == pytest.approx(0.5)


def test_groups_are_independent_and_vectorised():
    g = np.array([1, 0, 1, 0, 0])
    t = np.array([0.0, 1.0, 0.0, 0.0, 0.0])
    p = np.ones(5)
    m = overtrust_level(g, t, p, 3)
    # group 0: T = 1, budget 2.1, two untrusted: 2m = 2.1 → m > 1 → 1
    # group 1: T = 0, budget 2, two untrusted: m = 1; group 2 empty → 1
    assert m.tolist() == [1.0, 1.0, 1.0]
    g = np.r_[np.zeros(5, int), np.ones(8, int)]
    t = np.zeros(13)
    m = overtrust_level(g, t, np.ones(13), 2)
    assert m == pytest.approx([2 / 5, 2 / 8])
