"""theory.logistic and theory.thm42_logistic against brute force; stored counterexamples re-verified from their numbers."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from theory import logistic as lg
from theory import thm42_logistic as t42


def _L(z, y):
    return np.logaddexp(0.0, z) - y * z


def _pgd_l2(theta, x, y, r, steps=200, samples=2000, rng=None):
    """Brute force over the l2 ball (a LOWER bound of the exact max): sample the sphere, then projected gradient ascent
    from the best sample and from the two samples most aligned with +theta and -theta (the loss is convex, so local
    maxima sit on the sphere and ascent from both sides reaches each of them)."""
    rng = rng or np.random.default_rng(0)
    pts = rng.normal(size=(samples, x.size))
    pts *= r / np.linalg.norm(pts, axis=1, keepdims=True)
    vals = _L((x + pts) @ theta, y)
    proj = pts @ theta
    best = vals.max()
    for delta in (pts[np.argmax(vals)], pts[np.argmax(proj)], pts[np.argmin(proj)]):
        delta = delta.copy()
        for _ in range(steps):
            z = theta @ (x + delta)
            grad = (1 / (1 + np.exp(-z)) - y) * theta
            delta = delta + 0.5 * r * grad / max(np.linalg.norm(grad), 1e-300)
            nrm = np.linalg.norm(delta)
            if nrm > r:
                delta *= r / nrm
        best = max(best, _L(theta @ (x + delta), y))
    return best


@settings(deadline=None, max_examples=25)
@given(d=st.integers(1, 5), seed=st.integers(0, 10_000), r=st.floats(0.01, 3.0), soft=st.booleans())
def test_adversarial_l2_vs_pgd_and_random_sphere(d, seed, r, soft):
    rng = np.random.default_rng(seed)
    theta, x = rng.normal(size=d), rng.normal(size=d)
    y = rng.uniform() if soft else float(rng.integers(0, 2))
    exact = lg.adversarial_point_losses(theta, x[None], [y], r, "l2")[0]
    pts = rng.normal(size=(2000, d))
    pts *= r / np.linalg.norm(pts, axis=1, keepdims=True)
    sampled = _L((x + pts) @ theta, y).max()
    pgd = _pgd_l2(theta, x, y, r, rng=rng)
    assert sampled <= exact + 1e-12 and pgd <= exact + 1e-12
    assert abs(pgd - exact) <= 1e-9 * max(1, abs(exact)), f"expected {exact}, got {pgd} (PGD over the l2 ball)"


@settings(deadline=None, max_examples=25)
@given(d=st.integers(1, 6), seed=st.integers(0, 10_000), r=st.floats(0.01, 2.0), soft=st.booleans())
def test_adversarial_linf_vs_all_vertices(d, seed, r, soft):
    rng = np.random.default_rng(seed)
    theta, x = rng.normal(size=d), rng.normal(size=d)
    y = rng.uniform() if soft else float(rng.integers(0, 2))
    exact = lg.adversarial_point_losses(theta, x[None], [y], r, "linf")[0]
    verts = r * np.array(list(itertools.product([-1.0, 1.0], repeat=d)))
    brute = _L((x + verts) @ theta, y).max()  # convex in delta: max over the cube is at a vertex
    inner = _L((x + rng.uniform(-r, r, size=(500, d))) @ theta, y).max()
    assert abs(brute - exact) <= 1e-12 * max(1, abs(exact)) and inner <= exact + 1e-12


@settings(deadline=None, max_examples=10)
@given(a=st.floats(0.1, 5), b=st.floats(0.1, 5), n=st.integers(1, 4), d=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_mixup_loss_quad_vs_gauss_jacobi_vs_monte_carlo(a, b, n, d, seed):
    rng = np.random.default_rng(seed)
    X, y, th = rng.normal(size=(n, d)), rng.uniform(size=n), rng.normal(size=d)
    q = lg.mixup_loss(th, X, y, a, b, method="quad")
    gj = lg.mixup_loss(th, X, y, a, b, method="gauss-jacobi", order=160)
    assert abs(q - gj) < 1e-9
    m = 100_000
    i, j, lam = rng.integers(0, n, m), rng.integers(0, n, m), rng.beta(a, b, m)
    z = np.einsum("md,d->m", lam[:, None] * X[i] + (1 - lam[:, None]) * X[j], th)
    s = _L(z, lam * y[i] + (1 - lam) * y[j])
    assert abs(q - s.mean()) < 6 * s.std() / np.sqrt(m) + 1e-12


def test_taylor_forms_are_second_order_accurate():
    rng = np.random.default_rng(2)
    X, th = rng.normal(size=(5, 3)), rng.normal(size=3)
    y = (X @ th > 0).astype(float)
    errs = [abs(lg.adversarial_loss(th, X, y, r) - lg.taylor_adversarial(th, X, y, r)) for r in (0.02, 0.01)]
    assert 6 < errs[0] / errs[1] < 10  # O(r^3)
    Xc = X - X.mean(0)
    errs = [abs(lg.mixup_loss(th, s * Xc, y, 0.5, 0.5) - lg.taylor_mixup(th, s * Xc, y, 0.5, 0.5)) for s in (0.02, 0.01)]
    assert 6 < errs[0] / errs[1] < 20  # the gamma-expansion drops terms of order >= 3 in |theta^T (x_j - x_i)|


def test_theta_set_c_x_R_and_eps():
    X = np.array([[3.0, 4.0], [-1.0, 0.0]])
    th = np.array([1.0, 0.0])
    assert lg.c_x_of(X) == pytest.approx(1 / np.sqrt(2))
    assert lg.R_of(th, X) == pytest.approx(0.6)
    g = lg.sigmoid(X @ th)
    assert lg.in_theta_set(th, X, [1, 0], g, 0.0)
    assert not lg.in_theta_set(th, X, [0, 0], g, 0.0)  # training error on x_1
    assert not lg.in_theta_set(th, X, [1, 0], [1.0, 0.0], 0.1)  # soft labels outside the band
    e_p = lg.prescribed_eps(th, X, 1.0, 1.0, 2.0, 0.25, form="printed")
    e_c = lg.prescribed_eps(th, X, 1.0, 1.0, 2.0, 0.25, form="corrected")
    assert e_p == pytest.approx(0.5 / 1.25 * (1 / np.sqrt(2)) * 0.6 / 3) and e_c < e_p
    with pytest.raises(ValueError, match="valid"):
        lg.adversarial_loss(th, X, [1, 0], 0.1, norm="l1")


@pytest.fixture(scope="module")
def quick_claims():
    return t42.checks(quick=True)


def _independent_margin(inst, mode):
    """Recompute rhs - lhs without theory.logistic: scipy.stats.beta.expect for the mixup side, an exhaustive vertex /
    PGD search (a LOWER bound of the adversarial side) for the left side. margin < 0 here proves a violation."""
    X, y, ys, th = (np.asarray(inst[k], float) for k in ("X", "y", "y_soft", "theta"))
    a, b, w, kappa, c_x = (inst[k] for k in ("a", "b", "w", "kappa", "c_x"))
    n, d = X.shape
    z = X @ th
    R = np.min(np.abs(z) / (np.linalg.norm(X, axis=1) * np.linalg.norm(th)))
    m1 = stats.beta(a + 1, b).expect(lambda t: 1 - t) * a / (a + b) + stats.beta(b + 1, a).expect(lambda t: 1 - t) * b / (a + b)
    eps = (1 - w * kappa) / (1 + kappa) * c_x * R * m1
    lhs = 0.0
    for i in range(n):
        for lab, wt in ((y[i], 1.0), (ys[i], w)):
            if mode == "exact-linf":
                verts = eps * np.array(list(itertools.product([-1.0, 1.0], repeat=d)))
                lhs += wt * _L((X[i] + verts) @ th, lab).max() / n
            else:
                lhs += wt * _pgd_l2(th, X[i], lab, eps * np.sqrt(d), steps=100, samples=200) / n
    rhs = 0.0
    for i in range(n):
        for j in range(n):
            f = lambda t: _L(th @ (t * X[i] + (1 - t) * X[j]), t * y[i] + (1 - t) * y[j]) + w * _L(  # noqa: E731
                th @ (t * X[i] + (1 - t) * X[j]), t * ys[i] + (1 - t) * ys[j]
            )
            rhs += stats.beta(a, b).expect(f, epsabs=1e-13, epsrel=1e-12) / n**2
    return rhs - lhs


def test_stored_counterexamples_recheck_from_numbers(quick_claims):
    fails = [c for c in quick_claims if c.verdict == "fails"]
    assert {c.id for c in fails} >= {"thm42.logistic.taylor", "thm42.logistic.exact-l2", "thm42.logistic.exact-linf"}
    for c in fails:
        for name, inst in c.counterexample.items():
            h = t42.hypotheses(inst)
            assert h["theta_in_Theta"] and h["w_kappa_lt_1"] and h["c_x_strict"] and h["soft_labels_in_01"], (c.id, name, h)
            mode = c.id.split(".")[2] if c.id.count(".") >= 2 else "exact-l2"
            mode = mode if mode in t42.MODES else "exact-l2"
            if mode == "taylor":
                margin = t42.evaluate(inst, "taylor")["margin"]
            else:
                margin = _independent_margin(inst, mode)
            assert margin < 0, f"{c.id}/{name}: stored counterexample does not violate (margin {margin})"
            if name == "centred_w_gt_1":
                assert h["data_mean_norm"] < 1e-15  # the violation survives the implicit centring assumption
                assert t42.evaluate(inst, "exact-l2", form="corrected")["margin"] > 0


def test_quick_claims_are_consistent(quick_claims):
    by_id = {c.id: c for c in quick_claims}
    for mode in t42.MODES:
        assert by_id[f"thm42.logistic.{mode}.centred_w_le_1"].evidence["violations"] == 0
    for e in t42.errata():
        assert e.location and e.text_says and e.correct and e.evidence
