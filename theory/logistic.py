"""Logistic regression objects of Theorem 4.2 (Supp. B.2), computed exactly.

Notation. The paper reuses alpha (distillation weight AND first Beta parameter) and beta (second Beta parameter AND
the constant of Theta). Here they are kept apart:
    a, b        Beta(a, b) mixup parameters (P_lambda);  P~ uses (a, b) (theory.mixup_exact)
    w           distillation weight (paper: "any positive scalar alpha")
    kappa       the Theta constant in |y*_i - g(theta^T x_i)| <= kappa |y_i - g(theta^T x_i)|  (paper: beta / k)
Soft labels y*_i are probabilities in [0, 1] (the teacher's sigmoid output; the paper writes y*_i = f^T(x_i)).

Losses (Supp. B.2): f(x) = theta^T x, g = sigmoid, h = softplus, L(z, y) = h(z) - y z (linear in y, convex in z).

API:
    sigmoid(z), softplus(z), logistic_loss(z, y)
    adversarial_loss(theta, X, y, radius, norm="l2"|"linf") -> float
        (1/n) sum_i max_{||delta||_p <= radius} L(theta^T (x_i + delta), y_i), closed form: theta^T delta ranges over
        [-t, t] with t = radius * ||theta||_q (q the dual norm), and L is convex in z, so the max is at z_i +- t.
    adversarial_radius_l2(eps, d) = eps * sqrt(d)   (Supp. B.2 attacks with l2 radius eps*sqrt(d))
    mixup_loss(theta, X, y, a, b, method="quad"|"gauss-jacobi", order=160) -> float
        (1/n^2) sum_{i,j} E_{Beta(a,b)}[L(theta^T x~_ij(lam), y~_ij(lam))], exact n^2 double sum.
    in_theta_set(theta, X, y, y_soft, kappa) -> bool;  theta_set_slack(...) -> dict of the two constraint margins
    c_x_of(X) -> float       largest c_x with ||x_i||_2 >= c_x sqrt(d) for all i (the theorem wants strict >)
    R_of(theta, X) -> float  min_i |cos(theta, x_i)|
    prescribed_eps(theta, X, a, b, w, kappa, c_x=None, form="printed"|"corrected") -> float
        printed:   (1 - w kappa)/(1 + kappa)   c_x R E_{P~}[1 - lam]   (Thm in Supp. B.2, beta read as kappa)
        corrected: (1 - w kappa)/(1 + w kappa) c_x R E_{P~}[1 - lam]   (what the proof's first-order step needs)
    taylor_adversarial(theta, X, y, radius) / taylor_mixup(theta, X, y, a, b)
        the second-order expansions the proof uses (adversarial: quadratic in theta^T delta, maximised exactly over
        the l2 ball; mixup: quadratic in gamma = 1 - lam around gamma = 0, with P~ moments, NO centring assumed).
"""
from __future__ import annotations

import numpy as np
from scipy import special

from theory.mixup_exact import (
    beta_expectation,
    gauss_jacobi_rule,
    mixture_mean_one_minus,
    mixture_second_moment_one_minus,
)

NORMS = ("l2", "linf")


def sigmoid(z):
    return special.expit(z)


def softplus(z):
    z = np.asarray(z, dtype=float)
    return np.logaddexp(0.0, z)


def logistic_loss(z, y):
    """L(z, y) = h(z) - y z (Supp. B.2), elementwise."""
    return softplus(z) - np.asarray(y, dtype=float) * np.asarray(z, dtype=float)


def _as_data(theta, X, y):
    theta = np.asarray(theta, dtype=float).ravel()
    X = np.atleast_2d(np.asarray(X, dtype=float))
    y = np.asarray(y, dtype=float).ravel()
    if X.shape[1] != theta.size or X.shape[0] != y.size:
        raise ValueError(f"shapes disagree: theta {theta.shape}, X {X.shape}, y {y.shape}; want (d,), (n, d), (n,)")
    return theta, X, y


def dual_norm(theta, norm: str) -> float:
    if norm == "l2":
        return float(np.linalg.norm(theta, 2))
    if norm == "linf":
        return float(np.linalg.norm(theta, 1))
    raise ValueError(f"unknown norm {norm!r}; valid: {NORMS}")


def adversarial_radius_l2(eps: float, d: int) -> float:
    return float(eps) * float(np.sqrt(d))


def adversarial_point_losses(theta, X, y, radius: float, norm: str = "l2") -> np.ndarray:
    """Per-point exact worst-case loss over the ball {||delta||_p <= radius}: max(L(z - t), L(z + t))."""
    theta, X, y = _as_data(theta, X, y)
    t = float(radius) * dual_norm(theta, norm)
    z = X @ theta
    return np.maximum(logistic_loss(z - t, y), logistic_loss(z + t, y))


def adversarial_loss(theta, X, y, radius: float, norm: str = "l2") -> float:
    return float(np.mean(adversarial_point_losses(theta, X, y, radius, norm)))


def mixup_loss(theta, X, y, a: float, b: float, method: str = "quad", order: int = 160) -> float:
    """(1/n^2) sum_{i,j} E_{lam~Beta(a,b)} L(lam z_i + (1-lam) z_j, lam y_i + (1-lam) y_j), z = X theta."""
    theta, X, y = _as_data(theta, X, y)
    z = X @ theta
    n = z.size
    if method == "gauss-jacobi":
        lam, wts = gauss_jacobi_rule(a, b, order)
        zz = lam[:, None, None] * z[None, :, None] + (1 - lam[:, None, None]) * z[None, None, :]  # (K, n, n)
        yy = lam[:, None, None] * y[None, :, None] + (1 - lam[:, None, None]) * y[None, None, :]
        return float(np.tensordot(wts, logistic_loss(zz, yy), axes=1).sum() / n**2)
    if method != "quad":
        raise ValueError(f"unknown method {method!r}; valid: 'quad', 'gauss-jacobi'")
    total = 0.0
    for i in range(n):
        for j in range(n):
            zi, zj, yi, yj = z[i], z[j], y[i], y[j]
            total += beta_expectation(
                lambda t: float(logistic_loss(t * zi + (1 - t) * zj, t * yi + (1 - t) * yj)), a, b
            )
    return total / n**2


def c_x_of(X) -> float:
    X = np.atleast_2d(np.asarray(X, dtype=float))
    return float(np.min(np.linalg.norm(X, axis=1)) / np.sqrt(X.shape[1]))


def R_of(theta, X) -> float:
    theta = np.asarray(theta, dtype=float).ravel()
    X = np.atleast_2d(np.asarray(X, dtype=float))
    cos = (X @ theta) / (np.linalg.norm(X, axis=1) * np.linalg.norm(theta))
    return float(np.min(np.abs(cos)))


def theta_set_slack(theta, X, y, y_soft, kappa: float) -> dict:
    """Margins of the two constraints of Theta (>= 0 means satisfied)."""
    theta, X, y = _as_data(theta, X, y)
    z = X @ theta
    g = sigmoid(z)
    zero_error = y * z + (y - 1.0) * z  # = (2y - 1) z for y in {0, 1}
    distill = kappa * np.abs(y - g) - np.abs(np.asarray(y_soft, dtype=float) - g)
    return {"zero_error": float(zero_error.min()), "distill": float(distill.min())}


def in_theta_set(theta, X, y, y_soft, kappa: float) -> bool:
    s = theta_set_slack(theta, X, y, y_soft, kappa)
    return s["zero_error"] >= 0 and s["distill"] >= 0


def prescribed_eps(theta, X, a, b, w, kappa, c_x=None, form: str = "printed") -> float:
    c_x = c_x_of(X) if c_x is None else float(c_x)
    if form == "printed":
        factor = (1.0 - w * kappa) / (1.0 + kappa)
    elif form == "corrected":
        factor = (1.0 - w * kappa) / (1.0 + w * kappa)
    else:
        raise ValueError(f"unknown form {form!r}; valid: 'printed', 'corrected'")
    return factor * c_x * R_of(theta, X) * mixture_mean_one_minus(a, b)


def taylor_adversarial(theta, X, y, radius: float) -> float:
    """Second-order expansion of the l2 adversarial loss (Supp. B.2, 'By the second order Taylor approximation'):
    (1/n) sum_i max_{||delta||_2<=r} [L_i + (g_i - y_i) u + 1/2 g_i (1-g_i) u^2], u = theta^T delta in [-r|theta|, r|theta|]
    = (1/n) sum_i L_i + |g_i - y_i| r|theta| + 1/2 g_i(1-g_i) r^2 |theta|^2 (both terms peak at the same endpoint)."""
    theta, X, y = _as_data(theta, X, y)
    z = X @ theta
    g = sigmoid(z)
    t = float(radius) * np.linalg.norm(theta)
    return float(np.mean(logistic_loss(z, y) + np.abs(g - y) * t + 0.5 * g * (1 - g) * t**2))


def taylor_mixup(theta, X, y, a: float, b: float) -> float:
    """Second-order expansion in gamma = 1 - lam of the P~ form of the mixup loss (Supp. B.2, psi_i(gamma)):
    (1/n) sum_i L_i + E[gamma] (1/n^2) sum_{ij} (g_i - y_i) (z_j - z_i) + E[gamma^2] (1/2n^2) sum_ij g_i(1-g_i)(z_j - z_i)^2."""
    theta, X, y = _as_data(theta, X, y)
    z = X @ theta
    g = sigmoid(z)
    dz = z[None, :] - z[:, None]  # (i, j) -> z_j - z_i
    m1, m2 = mixture_mean_one_minus(a, b), mixture_second_moment_one_minus(a, b)
    first = np.mean((g - y)[:, None] * dz)
    second = 0.5 * np.mean((g * (1 - g))[:, None] * dz**2)
    return float(np.mean(logistic_loss(z, y)) + m1 * first + m2 * second)
