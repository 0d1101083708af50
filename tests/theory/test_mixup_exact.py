"""theory.mixup_exact against independent brute force: Monte Carlo, closed-form Beta moments, Gauss-Jacobi."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from theory.mixup_exact import (
    beta_expectation,
    beta_pdf,
    gauss_jacobi_rule,
    mixture_expectation,
    mixture_mean_one_minus,
    mixture_pdf,
    mixture_second_moment_one_minus,
    mixup_loss_own_label,
    mixup_loss_pairs,
)

pos = st.floats(min_value=0.05, max_value=8.0)


def _report(expected, got, tol, source):
    return f"expected {expected!r}, got {got!r}, difference {abs(expected - got):.3g}, tolerance {tol:.3g} ({source})"


@settings(deadline=None)
@given(a=pos, b=pos, k=st.integers(0, 6))
def test_beta_expectation_polynomial_moments_closed_form(a, b, k):
    # E[lam^k] = prod_{i<k} (a+i)/(a+b+i): exact, independent of any quadrature
    exact = float(np.prod([(a + i) / (a + b + i) for i in range(k)]))
    got = beta_expectation(lambda t: t**k, a, b)
    assert abs(got - exact) <= 1e-11, _report(exact, got, 1e-11, "Beta moment product formula")
    x, w = gauss_jacobi_rule(a, b, 8)  # Gauss-Jacobi is exact for degree < 16
    assert abs(w @ x**k - exact) <= 1e-10


@settings(deadline=None, max_examples=10)
@given(a=pos, b=pos, seed=st.integers(0, 10_000))
def test_beta_expectation_vs_monte_carlo(a, b, seed):
    rng = np.random.default_rng(seed)
    fn = lambda t: np.logaddexp(0.0, 4 * t - 1.5) + np.abs(t - 0.3)  # noqa: E731 - smooth part plus a kink
    s = fn(rng.beta(a, b, size=200_000))
    mc, se = s.mean(), s.std() / np.sqrt(s.size)
    got = beta_expectation(lambda t: float(fn(t)), a, b, breakpoints=[0.3])
    assert abs(got - mc) <= 6 * se + 1e-12, _report(mc, got, 6 * se, "Monte Carlo, 2e5 draws")


@settings(deadline=None)
@given(a=pos, b=pos, c=st.floats(0.05, 0.95))
def test_breakpoints_agree_with_single_interval_for_smooth_fn(a, b, c):
    f = lambda t: float(np.sin(3 * t) + t**2)  # noqa: E731
    assert abs(beta_expectation(f, a, b) - beta_expectation(f, a, b, breakpoints=[c, (c + 1) / 2])) < 1e-11


@settings(deadline=None)
@given(a=pos, b=pos)
def test_mixture_density_and_moments(a, b):
    # density identity: P~ pdf = a/(a+b) Beta(a+1,b) + b/(a+b) Beta(b+1,a) on a grid, mean by quadrature vs closed form
    grid = np.linspace(0.01, 0.99, 7)
    assert np.allclose(mixture_pdf(grid, a, b), a / (a + b) * beta_pdf(grid, a + 1, b) + b / (a + b) * beta_pdf(grid, b + 1, a))
    assert abs(mixture_expectation(lambda t: 1 - t, a, b) - mixture_mean_one_minus(a, b)) < 1e-12
    assert abs(mixture_expectation(lambda t: (1 - t) ** 2, a, b) - mixture_second_moment_one_minus(a, b)) < 1e-12


def test_mixture_moments_vs_sampling_the_label_weighted_construction():
    # sample lam ~ Beta(a,b), B | lam ~ Bernoulli(lam); gamma = 1 - lam if B = 1 else lam  (distance from own point)
    rng = np.random.default_rng(3)
    for a, b in ((0.2, 0.5), (1.0, 1.0), (2.0, 0.4)):
        lam = rng.beta(a, b, size=400_000)
        bern = rng.uniform(size=lam.size) < lam
        gamma = np.where(bern, 1 - lam, lam)
        for emp, exact in ((gamma.mean(), mixture_mean_one_minus(a, b)), ((gamma**2).mean(), mixture_second_moment_one_minus(a, b))):
            assert abs(emp - exact) < 5 * 0.5 / np.sqrt(lam.size), _report(exact, emp, 5 * 0.5 / np.sqrt(lam.size), "sampling")


def test_mixup_loss_pairs_vs_monte_carlo():
    rng = np.random.default_rng(0)
    n, d, a, b = 4, 3, 0.4, 0.7
    X, y, th = rng.normal(size=(n, d)), rng.uniform(size=n), rng.normal(size=d)

    def seg(i, j, t):
        z = th @ (t * X[i] + (1 - t) * X[j])
        return float(np.logaddexp(0, z) - (t * y[i] + (1 - t) * y[j]) * z)

    exact = mixup_loss_pairs(seg, n, a, b)
    m = 200_000
    i, j, lam = rng.integers(0, n, m), rng.integers(0, n, m), rng.beta(a, b, m)
    z = np.einsum("md,d->m", lam[:, None] * X[i] + (1 - lam[:, None]) * X[j], th)
    s = np.logaddexp(0, z) - (lam * y[i] + (1 - lam) * y[j]) * z
    assert abs(exact - s.mean()) < 6 * s.std() / np.sqrt(m)


@settings(deadline=None, max_examples=15)
@given(a=pos, b=pos, n=st.integers(1, 4), d=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_pair_form_equals_own_label_form(a, b, n, d, seed):
    rng = np.random.default_rng(seed)
    X, y, th = rng.normal(size=(n, d)), rng.uniform(size=n), rng.normal(size=d)
    L = lambda z, yy: float(np.logaddexp(0, z) - yy * z)  # noqa: E731
    lhs = mixup_loss_pairs(lambda i, j, t: L(th @ (t * X[i] + (1 - t) * X[j]), t * y[i] + (1 - t) * y[j]), n, a, b)
    rhs = mixup_loss_own_label(lambda i, j, t: L(th @ (t * X[i] + (1 - t) * X[j]), y[i]), n, a, b)
    assert abs(lhs - rhs) <= 1e-10 * max(1, abs(lhs)), _report(lhs, rhs, 1e-10, "Supp. B.2 identity")


def test_bad_parameters_raise_with_fix():
    with pytest.raises(ValueError, match="positive"):
        beta_expectation(lambda t: t, 0.0, 1.0)
    with pytest.raises(ValueError, match="n must be"):
        mixup_loss_pairs(lambda i, j, t: 0.0, 0, 1.0, 1.0)


def test_gauss_jacobi_weights_normalised():
    for a, b in ((0.1, 0.3), (5.0, 2.0)):
        x, w = gauss_jacobi_rule(a, b, 32)
        assert abs(w.sum() - 1) < 1e-13 and np.all((x > 0) & (x < 1))
        assert abs(w @ x - a / (a + b)) < 1e-12
        assert special.betaln(a, b) < np.inf
