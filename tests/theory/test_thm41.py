"""Property tests of Theorem 4.1's pointwise steps (Supp. B.1) and the certified pieces of the Monte Carlo bound."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from theory.thm41 import adv_loss, dist_loss_inf, loss, population_adv_error

logits = st.lists(st.floats(-50, 50, allow_nan=False), min_size=2, max_size=8)


@settings(deadline=None)
@given(logits, st.integers(0, 7), st.floats(0.01, 100))
def test_step9_two_L_bounds_misclassification(z, y, gamma):
    z = np.array(z)
    y = y % len(z)
    L = loss(z[None], np.array([y]), gamma)[0]
    mis = z[y] <= np.max(np.delete(z, y))
    assert 2 * L >= (1.0 if mis else 0.0) - 1e-12


@settings(deadline=None)
@given(logits, st.floats(0.05, 20), st.integers(0, 1000))
def test_lipschitz_linf_constant_half_over_gamma(z, gamma, seed):
    z = np.array(z)
    z2 = z + np.random.default_rng(seed).normal(size=z.size) * gamma
    d = np.max(np.abs(z - z2))
    dl = abs(loss(z[None], np.array([0]), gamma)[0] - loss(z2[None], np.array([0]), gamma)[0])
    assert dl <= d / (2 * gamma) + 1e-12  # tight constant; the paper's 1/gamma is twice it
    assert dl <= np.linalg.norm(z - z2, 1) / (4 * gamma) + 1e-12


def test_adv_loss_and_population_error_against_brute_force():
    rng = np.random.default_rng(0)
    W, c = rng.normal(size=(2, 3)), rng.normal(size=2)
    X, y = rng.normal(size=(50, 3)), rng.integers(0, 2, 50)
    eps, gamma = 0.2, 0.7
    corners = np.array(np.meshgrid(*[[-eps, eps]] * 3)).reshape(3, -1).T  # linear: worst case at a vertex
    brute = np.mean([max(loss((W @ (x + dl) + c)[None], np.array([t]), gamma)[0] for dl in corners) for x, t in zip(X, y)])
    assert abs(adv_loss(W, c, X, y, eps, gamma) - brute) < 1e-12
    mus = (np.array([-1.0, 0, 0]), np.array([1.0, 0, 0]))
    yy = rng.integers(0, 2, 400000)
    XX = rng.normal(size=(400000, 3)) + np.where(yy[:, None] == 1, mus[1], mus[0])
    w = W[1] - W[0]
    emp = np.mean((2 * yy - 1) * (XX @ w + c[1] - c[0]) - eps * np.abs(w).sum() <= 0)
    assert abs(emp - population_adv_error(W, c, mus, eps)) < 4e-3


def test_distillation_lp_is_below_any_fixed_g():
    rng = np.random.default_rng(1)
    n, d, m = 40, 4, 2
    X, A = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    W, c = rng.normal(size=(2, d)), rng.normal(size=2)
    lp = dist_loss_inf(W, c, X, A, 0.1, B=3.0, C=1.0)
    for _ in range(20):  # feasible g: ||v1 - v0||_inf <= 3, |c1 - c0| <= 1
        V = rng.uniform(-1.5, 1.5, size=(2, m))
        cg = rng.uniform(-0.5, 0.5, size=2)
        r = W - V @ A
        val = np.mean([np.max(np.abs(r @ x + c - cg) + 0.1 * np.abs(r).sum(1)) for x in X])
        assert lp <= val + 1e-9
