"""Exact mixup loss of a ReLU net: along each mixup segment the net is piecewise linear (Supp. B.2, 'f_theta is
locally linear'), so we find the pieces exactly and integrate the logistic loss x Beta density piece by piece.

Segment convention (main paper Sec. 3): x_ij(lam) = lam x_i + (1 - lam) x_j, y_ij(lam) = lam y_i + (1 - lam) y_j,
lam ~ Beta(a, b). The Beta quadrature (endpoint singularities in the weight, kinks as breakpoints, error-controlled)
is theory.mixup_exact.beta_expectation.
"""
from __future__ import annotations

import numpy as np

from theory import mixup_exact
from theory.relu_milp import logistic_loss
from theory.relu_net import ReluNet


def segment_knots(net: ReluNet, x_i: np.ndarray, x_j: np.ndarray) -> np.ndarray:
    """Sorted lam in [0, 1] (0 and 1 included) between which the net is affine on x_ij(lam).

    Layer by layer: with the knots of layers < l in place, layer l's pre-activations are affine between consecutive
    knots, so each sign change between two knots is one zero crossing, found by linear interpolation."""
    x_i, x_j = np.asarray(x_i, float), np.asarray(x_j, float)
    knots = np.array([0.0, 1.0])
    if np.array_equal(x_i, x_j):
        return knots
    for l in range(len(net.weights) - 1):
        pts = knots[:, None] * x_i + (1 - knots[:, None]) * x_j  # (K, d)
        z = net.preacts(pts)[l]  # (K, n_l)
        z0, z1 = z[:-1], z[1:]
        cross = (z0 * z1) < 0
        if not cross.any():
            continue
        k_idx, _ = np.nonzero(cross)
        t0, t1 = knots[k_idx], knots[k_idx + 1]
        frac = z0[cross] / (z0[cross] - z1[cross])
        knots = np.unique(np.concatenate([knots, t0 + (t1 - t0) * frac]))
    return knots


def segment_logits(net: ReluNet, x_i: np.ndarray, x_j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(knots, f at knots): f(x_ij(lam)) is the linear interpolation of these values (scalar output)."""
    knots = segment_knots(net, x_i, x_j)
    pts = knots[:, None] * np.asarray(x_i, float) + (1 - knots[:, None]) * np.asarray(x_j, float)
    return knots, net.forward(pts)[:, 0]


def segment_loss_fn(net: ReluNet, x_i, x_j, y_i: float, y_j: float):
    """(fn, breakpoints): fn(lam) = L(f(x_ij(lam)), y_ij(lam)) evaluated exactly from the pieces."""
    knots, fv = segment_logits(net, x_i, x_j)

    def fn(lam: float) -> float:
        f = np.interp(lam, knots, fv)
        return float(logistic_loss(f, lam * y_i + (1 - lam) * y_j))

    return fn, knots[1:-1]


def mixup_loss(net: ReluNet, X: np.ndarray, Y: np.ndarray, a: float, b: float, *, epsabs: float = 1e-12,
               epsrel: float = 1e-10) -> float:
    """L_mix(f, D) = (1/n^2) sum_{i,j} E_{lam ~ Beta(a,b)} L(f(x_ij(lam)), y_ij(lam)) (main paper Sec. 3; Supp. B.2),
    with labels y in [0, 1] (hard or teacher soft labels), exactly up to the quadrature's controlled error."""
    X, Y = np.asarray(X, float), np.asarray(Y, float)
    n = len(X)
    cache = {}

    def piece(i, j):
        if (i, j) not in cache:
            cache[(i, j)] = segment_loss_fn(net, X[i], X[j], Y[i], Y[j])
        return cache[(i, j)]

    return mixup_exact.mixup_loss_pairs(lambda i, j, t: piece(i, j)[0](t), n, a, b,
                                        breakpoints=lambda i, j: piece(i, j)[1], epsabs=epsabs, epsrel=epsrel)


def mixup_loss_fast(net: ReluNet, X: np.ndarray, Y: np.ndarray, a: float, b: float, order: int = 64) -> float:
    """Same quantity by one Gauss-Jacobi rule over all pairs at once (vectorised; exact pieces, but the rule ignores
    kinks, so accuracy ~1e-4..1e-6): for searches only; verdicts use mixup_loss."""
    X, Y = np.asarray(X, float), np.asarray(Y, float)
    lam, w = mixup_exact.gauss_jacobi_rule(a, b, order)
    xm = lam[None, None, :, None] * X[:, None, None, :] + (1 - lam[None, None, :, None]) * X[None, :, None, :]
    ym = lam[None, None, :] * Y[:, None, None] + (1 - lam[None, None, :]) * Y[None, :, None]
    f = net.forward(xm.reshape(-1, X.shape[1]))[:, 0].reshape(ym.shape)
    return float(np.mean(logistic_loss(f, ym) @ w))
