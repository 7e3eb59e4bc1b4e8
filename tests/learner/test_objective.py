"""Φ and J: stable special functions, analytic gradient / Hessian vs finite differences."""

import numpy as np
import pytest
import tensorflow as tf

from app.learner import objective as obj
from app.learner import scale
from app.learner.fit import hp_tensor
from app.learner.hparams import HParams


def _ref(x):
    """Φ, Φ', Φ'' in extended precision, away from 0."""
    x = np.asarray(x, np.longdouble)
    phi = np.log(np.sinh(x) / x)
    d1 = 1 / np.tanh(x) - 1 / x
    d2 = 1 / x**2 - 1 / np.sinh(x) ** 2
    return phi, d1, d2


@pytest.mark.parametrize("x", [1e-8, 1e-3, 0.049, 0.051, 0.3, 2.0, 20.0, 300.0])
def test_phi_stable(x):
    for sign in (1, -1):
        xs = tf.constant([sign * x], tf.float64)
        got = [float(f(xs)[0]) for f in (obj.phi, obj.dphi, obj.d2phi)]
        if x >= 1e-3 and x < 300:
            ref = [float(v) for v in _ref(x)]
            ref[1] *= sign
            for g, r in zip(got, ref, strict=True):
                assert g == pytest.approx(r, rel=1e-9, abs=1e-13)
        assert np.all(np.isfinite(got))
        assert float(scale.phi(sign * x)) == pytest.approx(got[0], rel=1e-12, abs=1e-15)
        assert float(scale.dphi(sign * x)) == pytest.approx(got[1], rel=1e-12, abs=1e-15)
    big = float(obj.phi(tf.constant([1000.0], tf.float64))[0])
    assert big == pytest.approx(1000 - np.log(2) - np.log(1000))


def test_phi_series_continuous_at_cutoff():
    x = tf.constant([obj._CUT * (1 - 1e-12), obj._CUT * (1 + 1e-12)], tf.float64)
    for f in (obj.phi, obj.dphi, obj.d2phi):
        v = f(x).numpy()
        assert abs(v[0] - v[1]) < 1e-12 * max(1.0, abs(v[0]))


def _problem(seed=0, S=30, n_items=8, R=60):
    rng = np.random.default_rng(seed)
    ra = rng.integers(0, S, R).astype(np.int32)
    rb = ((ra + 1 + rng.integers(0, S - 1, R)) % S).astype(np.int32)
    r = rng.uniform(-1, 1, R)
    slot_item = rng.integers(0, n_items, S).astype(np.int32)
    w = rng.uniform(0, 1, S)
    theta = rng.normal(0, 2, S)
    rho = rng.normal(0, 1, n_items)
    return theta, rho, (ra, rb, r, slot_item, w)


HP = HParams(lam=0.7, nu=0.4, delta=0.5, sigma=3.0)


def test_gradient_matches_finite_differences():
    theta, rho, args = _problem()
    hp = hp_tensor(HP)
    J, gt, gr = obj.value_grad(theta, rho, *args, hp)
    assert float(J) == pytest.approx(float(obj.value(theta, rho, *args, hp)), rel=1e-13)
    eps = 1e-6
    for k in range(len(theta)):
        e = np.zeros_like(theta)
        e[k] = eps
        fd = (obj.value(theta + e, rho, *args, hp) - obj.value(theta - e, rho, *args, hp)) / 2 / eps
        assert float(gt[k]) == pytest.approx(float(fd), abs=1e-6)
    for k in range(len(rho)):
        e = np.zeros_like(rho)
        e[k] = eps
        fd = (obj.value(theta, rho + e, *args, hp) - obj.value(theta, rho - e, *args, hp)) / 2 / eps
        assert float(gr[k]) == pytest.approx(float(fd), abs=1e-6)


def test_hvp_and_diag_match_gradient_differences():
    theta, rho, args = _problem(seed=1)
    hp = hp_tensor(HP)
    rng = np.random.default_rng(2)
    vt, vr = rng.normal(size=theta.shape), rng.normal(size=rho.shape)
    ht, hr = obj.hvp(theta, rho, vt, vr, *args, hp)
    eps = 1e-5
    _, gtp, grp = obj.value_grad(theta + eps * vt, rho + eps * vr, *args, hp)
    _, gtm, grm = obj.value_grad(theta - eps * vt, rho - eps * vr, *args, hp)
    np.testing.assert_allclose(ht, (gtp - gtm) / 2 / eps, atol=1e-6)
    np.testing.assert_allclose(hr, (grp - grm) / 2 / eps, atol=1e-6)
    # diagonal = e_k · H e_k
    dt, dr = obj.hessian_diag(theta, rho, *args, hp)
    for k in range(5):
        e = np.zeros_like(theta)
        e[k] = 1
        ht, _ = obj.hvp(theta, rho, e, np.zeros_like(rho), *args, hp)
        assert float(ht[k]) == pytest.approx(float(dt[k]), rel=1e-12)
    e = np.zeros_like(rho)
    e[0] = 1
    _, hr = obj.hvp(theta, rho, np.zeros_like(theta), e, *args, hp)
    assert float(hr[0]) == pytest.approx(float(dr[0]), rel=1e-12)


def test_squash():
    assert scale.squash(0.0) == 0.0
    assert scale.squash(1e9) == pytest.approx(100.0)
    assert float(scale.unsquash(scale.squash(1.7))) == pytest.approx(1.7)
