"""Exact mixup-loss machinery: Beta densities, the label-weighted mixture P~, and pair-summed mixup losses.

API (imported by the logistic and ReLU checks; numpy/scipy only):

    beta_pdf(lam, a, b) -> ndarray                 density of Beta(a, b) at lam (vectorised)
    mixture_pdf(lam, a, b) -> ndarray              density of P~ = a/(a+b) Beta(a+1, b) + b/(a+b) Beta(b+1, a)
                                                   (Supp. B.2, "the distribution P~_lambda")
    beta_expectation(fn, a, b, *, breakpoints=(), epsabs=1e-13, epsrel=1e-12, limit=200) -> float
        E_{lam ~ Beta(a, b)}[fn(lam)] by adaptive quadrature (QUADPACK QAWS, scipy.integrate.quad with
        weight='alg', wvar=(a-1, b-1)), so the endpoint singularities of the density for a < 1 or b < 1 are
        integrated exactly by the rule instead of being sampled. fn takes one float. `breakpoints` (points in (0, 1)
        where fn has kinks, e.g. ReLU pieces along a segment) split [0, 1]: the first piece carries the lam^(a-1)
        singularity in the weight, the last piece the (1-lam)^(b-1) one, inner pieces are smooth.
        Raises if QUADPACK's error estimate exceeds max(epsabs, epsrel*|value|) * 1e3.
    mixture_expectation(fn, a, b, **kw) -> float   E_{lam ~ P~}[fn(lam)] (two beta_expectation calls)
    gauss_jacobi_rule(a, b, order) -> (nodes, weights)
        order-point Gauss-Jacobi rule for E_{Beta(a, b)}; weights sum to 1. Exact for polynomials of degree
        < 2*order; fast and vectorised for smooth integrands (used in searches, re-checked with beta_expectation).
    mixup_loss_pairs(loss_of_segment, n, a, b, **kw) -> float
        (1/n^2) sum_{i,j} E_{lam ~ Beta(a, b)}[ loss_of_segment(i, j, lam) ]  where the caller's
        loss_of_segment(i, j, lam) = l(lam x_i + (1-lam) x_j, lam y_i + (1-lam) y_j)   (main paper Sec. 3, L_mix).
    mixup_loss_own_label(loss_own_label, n, a, b, **kw) -> float
        (1/n^2) sum_{i,j} E_{lam ~ P~}[ loss_own_label(i, j, lam) ]  with
        loss_own_label(i, j, lam) = l(lam x_i + (1-lam) x_j, y_i).  For a loss linear in the label this equals
        mixup_loss_pairs (Supp. B.2 identity; checked in theory.beta_mixture).
    mixture_mean_one_minus(a, b) -> float          E_{P~}[1 - lam]     = 2ab / ((a+b)(a+b+1))
    mixture_second_moment_one_minus(a, b) -> float E_{P~}[(1 - lam)^2] = ab / ((a+b)(a+b+1))

`**kw` of the pair sums are passed to beta_expectation (breakpoints may instead be a callable (i, j) -> points).
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
from scipy import integrate, special

__all__ = [
    "beta_pdf",
    "mixture_pdf",
    "beta_expectation",
    "mixture_expectation",
    "gauss_jacobi_rule",
    "mixup_loss_pairs",
    "mixup_loss_own_label",
    "mixture_mean_one_minus",
    "mixture_second_moment_one_minus",
]


def _check_ab(a: float, b: float) -> None:
    a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not (np.all(np.isfinite(a_)) and np.all(np.isfinite(b_)) and np.all(a_ > 0) and np.all(b_ > 0)):
        raise ValueError(f"Beta parameters must be finite and > 0, got a={a!r}, b={b!r}; pass positive floats")


def beta_pdf(lam, a: float, b: float):
    """Density of Beta(a, b): lam^(a-1) (1-lam)^(b-1) / B(a, b), via log-space for stability."""
    _check_ab(a, b)
    lam = np.asarray(lam, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = special.xlog1py(b - 1.0, -lam) + special.xlogy(a - 1.0, lam) - special.betaln(a, b)
    out = np.exp(logp)
    return np.where((lam < 0) | (lam > 1), 0.0, out)


def mixture_pdf(lam, a: float, b: float):
    """Density of P~ = a/(a+b) Beta(a+1, b) + b/(a+b) Beta(b+1, a)  (Supp. B.2)."""
    _check_ab(a, b)
    return a / (a + b) * beta_pdf(lam, a + 1.0, b) + b / (a + b) * beta_pdf(lam, b + 1.0, a)


def mixture_mean_one_minus(a: float, b: float) -> float:
    """E_{P~}[1 - lam] = 2ab / ((a+b)(a+b+1)) (closed form proved in theory.beta_mixture)."""
    _check_ab(a, b)
    return 2.0 * a * b / ((a + b) * (a + b + 1.0))


def mixture_second_moment_one_minus(a: float, b: float) -> float:
    """E_{P~}[(1 - lam)^2] = ab / ((a+b)(a+b+1)) (closed form proved in theory.beta_mixture)."""
    _check_ab(a, b)
    return a * b / ((a + b) * (a + b + 1.0))


def _quad_checked(fn, lo, hi, *, epsabs, epsrel, limit, **kw) -> float:
    val, err = integrate.quad(fn, lo, hi, epsabs=epsabs, epsrel=epsrel, limit=limit, **kw)
    tol = max(epsabs, epsrel * abs(val)) * 1e3
    if not np.isfinite(val) or err > tol:
        raise ArithmeticError(
            f"quadrature on [{lo}, {hi}] not converged: value={val!r}, error estimate={err:.3g} > tolerance {tol:.3g}; "
            "pass the integrand's kinks as breakpoints or loosen epsabs/epsrel"
        )
    return float(val)


def beta_expectation(
    fn: Callable[[float], float],
    a: float,
    b: float,
    *,
    breakpoints: Iterable[float] = (),
    epsabs: float = 1e-13,
    epsrel: float = 1e-12,
    limit: int = 200,
) -> float:
    """E_{lam ~ Beta(a, b)}[fn(lam)] by QUADPACK with the algebraic endpoint weight (see module docstring)."""
    _check_ab(a, b)
    pts = sorted({float(p) for p in breakpoints if 0.0 < float(p) < 1.0})
    lognorm = special.betaln(a, b)
    opts = dict(epsabs=epsabs, epsrel=epsrel, limit=limit)
    if not pts:
        total = _quad_checked(fn, 0.0, 1.0, weight="alg", wvar=(a - 1.0, b - 1.0), **opts)
        return total * float(np.exp(-lognorm))
    edges = [0.0, *pts, 1.0]
    total = 0.0
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        if k == 0:  # lam^(a-1) singular at 0: in the weight; (1-lam)^(b-1) is smooth here
            total += _quad_checked(
                lambda t: fn(t) * (1.0 - t) ** (b - 1.0), lo, hi, weight="alg", wvar=(a - 1.0, 0.0), **opts
            )
        elif k == len(edges) - 2:  # (1-lam)^(b-1) singular at 1
            total += _quad_checked(lambda t: fn(t) * t ** (a - 1.0), lo, hi, weight="alg", wvar=(0.0, b - 1.0), **opts)
        else:
            total += _quad_checked(lambda t: fn(t) * t ** (a - 1.0) * (1.0 - t) ** (b - 1.0), lo, hi, **opts)
    return total * float(np.exp(-lognorm))


def mixture_expectation(fn: Callable[[float], float], a: float, b: float, **kw) -> float:
    """E_{lam ~ P~}[fn(lam)] = a/(a+b) E_{Beta(a+1,b)}[fn] + b/(a+b) E_{Beta(b+1,a)}[fn]."""
    _check_ab(a, b)
    return a / (a + b) * beta_expectation(fn, a + 1.0, b, **kw) + b / (a + b) * beta_expectation(fn, b + 1.0, a, **kw)


def gauss_jacobi_rule(a: float, b: float, order: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Nodes lam_k in (0, 1) and weights w_k (sum 1) with sum_k w_k p(lam_k) = E_{Beta(a,b)}[p] for deg p < 2*order."""
    _check_ab(a, b)
    # Jacobi weight (1-x)^A (1+x)^B on [-1, 1]; lam = (1+x)/2 gives lam^(a-1) (1-lam)^(b-1): A = b-1, B = a-1.
    x, w = special.roots_jacobi(int(order), b - 1.0, a - 1.0)
    return (1.0 + x) / 2.0, w / w.sum()


def _pair_breaks(breakpoints, i, j):
    if breakpoints is None:
        return ()
    return breakpoints(i, j) if callable(breakpoints) else breakpoints


def _pair_mean(fn: Callable[[int, int, float], float], expectation, n: int, a: float, b: float, breakpoints, kw
               ) -> float:
    """(1/n^2) sum_{i,j} expectation_{a,b}[fn(i, j, .)], the exact double sum over all ordered pairs."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    total = 0.0
    for i in range(n):
        for j in range(n):
            total += expectation(lambda t: fn(i, j, t), a, b, breakpoints=_pair_breaks(breakpoints, i, j), **kw)
    return total / n**2


def mixup_loss_pairs(
    loss_of_segment: Callable[[int, int, float], float], n: int, a: float, b: float, *, breakpoints=None, **kw
) -> float:
    """L_mix = (1/n^2) sum_{i,j} E_{Beta(a,b)}[l(x~_ij(lam), y~_ij(lam))] (main paper Sec. 3), exact double sum."""
    return _pair_mean(loss_of_segment, beta_expectation, n, a, b, breakpoints, kw)


def mixup_loss_own_label(
    loss_own_label: Callable[[int, int, float], float], n: int, a: float, b: float, *, breakpoints=None, **kw
) -> float:
    """(1/n^2) sum_{i,j} E_{P~}[l(x~_ij(lam), y_i)]: the right side of the Supp. B.2 identity, exact double sum."""
    return _pair_mean(loss_own_label, mixture_expectation, n, a, b, breakpoints, kw)
