"""Trust propagation (LipschiTrust) and voting rights (AffineOvertrust), by hand."""

import numpy as np
import pytest

from app.learner.trust import (
    overtrust_level,
    propagate_trust,
    voting_rights,
    voting_rights_one,
)


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


def test_untrusted_share_a_fixed_budget_by_hand():
    # one video: 1 trusted (t=1) and 10 untrusted (t=0) public raters.
    # trusted pool: T = 1, budget 2.1 never reached by one rater at t = 1 → m = 1;
    # the 10 untrusted share untrusted_budget (0.25): min(m, 0.25/10) each
    trust = np.r_[1.0, np.zeros(10)]
    vr = voting_rights(np.zeros(11, int), trust, np.ones(11), 1, untrusted_budget=0.25)
    assert vr[0] == pytest.approx(1.0)
    assert vr[1:] == pytest.approx(np.full(10, 0.025))
    assert vr[1:].sum() == pytest.approx(0.25)
    # a lone untrusted rater: min(m = 1, 0.25/1)
    assert voting_rights(np.zeros(1, int), np.zeros(1), np.ones(1), 1).tolist() == [0.25]


def test_overtrust_private_and_partial_trust_by_hand():
    # raters t = [0.0 (private), 0.1, 0.5, 1.0]; p = [0.5, 1, 1, 1]
    # positive pool: T = 1.6, budget = 2.16; f(m) on [0.5, 1]: (m − 0.1) + (m − 0.5)
    # = 2m − 0.6 = 2.16 → m = 1.38 > 1, so m = 1 (budget never reached)
    t = np.array([0.0, 0.1, 0.5, 1.0])
    p = np.array([0.5, 1, 1, 1])
    assert overtrust_level(np.zeros(3, int), t[1:], p[1:], 1)[0] == 1.0
    vr = voting_rights(np.zeros(4, int), t, p, 1, untrusted_budget=0.25)
    # the private trust-0 rater: p·min(m, 0.25 / Σp₀) = 0.5·min(1, 0.5)
    assert vr.tolist() == pytest.approx([0.25, 1.0, 1.0, 1.0])
    # 6 more untrusted public raters: Σp₀ = 6.5. The positive raters keep their rights
    # (trust-0 accounts never dilute anyone); the trust-0 raters share 0.25.
    t2 = np.r_[t, np.zeros(6)]
    p2 = np.r_[p, np.ones(6)]
    vr2 = voting_rights(np.zeros(10, int), t2, p2, 1, untrusted_budget=0.25)
    assert vr2[1:4].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert vr2[0] == pytest.approx(0.5 * 0.25 / 6.5)
    assert vr2[4:] == pytest.approx(np.full(6, 0.25 / 6.5))
    assert vr2[t2 == 0].sum() == pytest.approx(0.25)


def test_low_trust_raters_share_tournesols_overtrust():
    # positive pool of 10 raters at t = 0.01: T = 0.1, budget 0.1·0.1 + 2 = 2.01;
    # f(m) = 10·(m − 0.01) = 2.01 → m = 0.211 for each; trust-0 raters get min(m, ·)
    t = np.r_[np.full(10, 0.01), np.zeros(3)]
    vr = voting_rights(np.zeros(13, int), t, np.ones(13), 1, untrusted_budget=0.25)
    assert vr[:10] == pytest.approx(np.full(10, 0.211))
    assert vr[10:] == pytest.approx(np.full(3, 0.25 / 3))
    vr1 = voting_rights(np.zeros(1, int), np.zeros(1), np.ones(1), 1, untrusted_budget=5.0)
    assert vr1.tolist() == [1.0]  # never above the positive pool's level m (here 1)


@pytest.mark.parametrize("seed", range(5))
def test_grouped_and_single_group_paths_agree(seed):
    rng = np.random.default_rng(seed)
    n = 40
    g = rng.integers(0, 4, n)
    t = np.where(rng.random(n) < 0.4, 0.0, rng.random(n))
    p = np.where(rng.random(n) < 0.2, 0.5, 1.0)
    vr = voting_rights(g, t, p, 4, untrusted_budget=0.3)
    for k in range(4):
        m = g == k
        assert vr[m] == pytest.approx(voting_rights_one(t[m], p[m], untrusted_budget=0.3))
        assert vr[m & (t == 0)].sum() <= 0.3 + 1e-12


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
