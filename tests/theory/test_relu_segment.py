"""Piecewise-exact mixup loss of ReLU nets against brute force (fine quadrature and Monte Carlo)."""
import numpy as np
import pytest
from scipy import stats

from theory.relu_milp import logistic_loss
from theory.relu_net import ReluNet
from theory.relu_segment import mixup_loss, mixup_loss_fast, segment_logits


@pytest.mark.parametrize("bias", [False, True])
def test_knots_make_the_net_affine_between_them(bias):
    rng = np.random.default_rng(0)
    net = ReluNet.random([3, 10, 10, 1], rng, bias=bias)
    xi, xj = rng.normal(size=3), rng.normal(size=3)
    knots, fv = segment_logits(net, xi, xj)
    lam = np.linspace(0, 1, 20001)
    f = net.forward(lam[:, None] * xi + (1 - lam[:, None]) * xj)[:, 0]
    assert np.max(np.abs(np.interp(lam, knots, fv) - f)) < 1e-12
    assert len(knots) >= 3  # at least one kink on a random segment of this net


@pytest.mark.parametrize("a,b", [(1.0, 1.0), (0.3, 0.6), (2.0, 0.4)])
def test_mixup_loss_against_fine_quadrature_and_monte_carlo(a, b):
    rng = np.random.default_rng(1)
    net = ReluNet.random([2, 8, 8, 1], rng, bias=True)
    X = rng.normal(size=(4, 2))
    Y = rng.uniform(size=4)
    exact = mixup_loss(net, X, Y, a, b)
    fine = mixup_loss_fast(net, X, Y, a, b, order=600)  # Gauss-Jacobi ignoring kinks: converges slowly
    assert abs(exact - fine) < 1e-5, (exact, fine)
    lam = stats.beta(a, b).rvs(size=60000, random_state=2)
    mc = []
    for i in range(4):
        for j in range(4):
            xm = lam[:, None] * X[i] + (1 - lam[:, None]) * X[j]
            mc.append(logistic_loss(net.forward(xm)[:, 0], lam * Y[i] + (1 - lam) * Y[j]))
    mc = np.concatenate(mc)
    se = mc.std() / np.sqrt(len(mc))
    assert abs(exact - mc.mean()) < 5 * se, (exact, mc.mean(), se)
