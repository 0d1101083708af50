"""Property tests of Theorem 4.1's pointwise steps (Supp. B.1), the certified pieces of the Monte Carlo bound, and
the verdict rule: a planted fault (a deficit in the left side, a dropped term or factor of the right side) must move
the certified margin by exactly its size and flip the verdict once it exceeds the margin or the power."""
import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import page, thm41
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


def _fitted(n: int, seed: int):
    """One training set of the default regime at size n and its fitted student (as one_run draws them)."""
    reg = replace(thm41.REGIME, n=n)
    rng = np.random.default_rng(seed)
    mus, A = thm41.setting(reg, rng)
    X, y = thm41._sample(reg.n, mus, rng)
    W, c = thm41._fit_logreg(X, y)
    return reg, rng, A, X, W, c


def test_distillation_bounds_bracket_the_full_lp_and_any_feasible_g():
    """The active-set solve (used at n = 16384) against the full interior-point LP, and its certified bracket."""
    reg, rng, A, X, W, c = _fitted(4096, 3)
    b = thm41.dist_loss_bounds(W, c, X, A, reg.eps, reg.B, reg.C)
    full = dist_loss_inf(W, c, X, A, reg.eps, reg.B, reg.C)
    assert b["solver"] == "active set"
    assert b["lower"] <= full <= b["upper"] and b["upper"] - b["lower"] < 1e-8
    for _ in range(20):  # any g in G is an upper bound of the inf, so never below the certified lower bound
        V = rng.uniform(-2, 2, size=(2, A.shape[0]))
        V[1] = V[0] + np.clip(V[1] - V[0], -reg.B, reg.B)
        cg = rng.uniform(-0.5, 0.5, size=2)
        assert b["lower"] <= thm41._dist_objective(V, cg, W, c, X, A, reg.eps)[0]


def test_distillation_lower_bound_is_weak_duality_not_the_solver(monkeypatch):
    """With the multipliers thrown away the certified lower bound falls to the trivial 0: it is computed, not copied
    from the solver's objective."""
    reg, rng, A, X, W, c = _fitted(600, 4)
    res = thm41._full_lp(W, c, X, A, reg.eps, reg.B, reg.C)
    exact = float(res.fun)
    b = thm41.dist_loss_bounds(W, c, X, A, reg.eps, reg.B, reg.C)
    assert b["solver"] == "full LP" and b["lower"] <= exact <= b["upper"] and b["upper"] - b["lower"] < 1e-8
    res.ineqlin.marginals[:] = 0.0
    monkeypatch.setattr(thm41, "_full_lp", lambda *a: res)
    b = thm41.dist_loss_bounds(W, c, X, A, reg.eps, reg.B, reg.C)
    assert b["lower"] == 0.0 < b["upper"]


def test_rademacher_bracket_contains_the_exact_complexity_of_a_subclass():
    """n = 10: E_sigma over all 2^10 sign vectors of the sup over a grid of G (a subclass, so <= R_S) must lie below the
    certified upper bound and above the certified lower bound (which it bounds from below)."""
    rng = np.random.default_rng(5)
    n, d, m, eps, gamma, B, C = 10, 3, 2, 0.1, 1.0, 3.75, 1.0
    A = np.vstack([np.eye(d)[0], rng.normal(size=(1, d)) / np.sqrt(d)])
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, d)) + np.where(y[:, None] == 1, 1.0, -1.0) * np.eye(d)[0]
    s, H = 2 * y - 1, X @ A.T
    grid = np.linspace(-B, B, 13)
    psis = []
    for v in itertools.product(grid, repeat=m):
        v = np.array(v)
        for cc in np.linspace(-C, C, 9):
            psis.append(1 / (1 + np.exp((s * (H @ v + cc) - eps * np.abs(A.T @ v).sum()) / gamma)))
    P = np.array(psis)
    sig = np.array(list(itertools.product([-1, 1], repeat=n)))
    sub = float(np.mean((sig @ P.T).max(1))) / n
    lo = thm41.rademacher_lower(X, y, A, eps, gamma, B, C)
    hi = thm41.rademacher_bound(X, y, A, eps, gamma, B, C)
    assert 0 < lo <= sub <= hi


def test_population_error_bounds_contain_the_float_value():
    rng = np.random.default_rng(6)
    W, c = np.zeros((2, 3)), np.array([0.0, 0.1])
    W[1] = rng.normal(size=3)
    mus = (np.array([-1.5, 0, 0]), np.array([1.5, 0, 0]))
    lo, hi = thm41.population_adv_error_bounds(W, c, mus, 0.1)
    assert lo < population_adv_error(W, c, mus, 0.1) < hi and hi - lo < 3e-9


# --------------------------------------------------------------------------- the verdict rule on real runs
@pytest.fixture(scope="module")
def runs():
    rows, _ = thm41.monte_carlo(thm41.REGIME, R=3, seed=thm41.SEED)
    return rows


@pytest.mark.parametrize("form", thm41.FORMS)
def test_default_regime_holds_with_positive_certified_margin(runs, form):
    verdict, ev = thm41.decide(runs, form, thm41.REGIME)
    assert verdict == "holds-certified"
    assert ev["min_certified_margin"] > 0.1 and ev["vacuous"] == 0 and ev["violations"] == "0/3"
    assert ev["mean_rhs_upper"] < 1  # a violation is possible at all
    assert ev["detectable_deficit"] > ev["min_certified_margin"]


def test_breakdown_of_the_right_side_sums_to_it(runs):
    for r in runs:
        for form in thm41.FORMS:
            t = thm41.rhs_terms(r, form, thm41.REGIME)
            lo, hi = thm41.rhs_bounds(r, form, thm41.REGIME)
            assert math.isclose(sum(v[0] for v in t.values()), lo, abs_tol=1e-12)
            assert math.isclose(sum(v[1] for v in t.values()), hi, abs_tol=1e-12)
            assert math.isclose(t["confidence"][1] - thm41.ALLOW,
                                thm41.confidence_term(form, thm41.REGIME.n, thm41.REGIME.delta), abs_tol=1e-15)


@pytest.mark.parametrize("term", ["adv_loss", "dist_loss", "rademacher", "confidence"])
def test_planted_dropped_term_lowers_every_margin_by_that_term(runs, term):
    reg, form = thm41.REGIME, "printed"
    _, ev = thm41.decide(runs, form, reg)
    planted = dict(thm41.COEFFS, **{term: 0.0})
    _, ev_p = thm41.decide(runs, form, reg, coeffs=planted)
    name = {"adv_loss": "2 L_adv", "dist_loss": "(8/gamma) L_dis", "rademacher": "4 R_S", "confidence": "confidence"}[term]
    # the term's certified lower bound with and without it (a constant term keeps its +-ALLOW interval when zeroed)
    drops = [thm41.rhs_terms(r, form, reg)[name][0] - thm41.rhs_terms(r, form, reg, planted)[name][0] for r in runs]
    assert min(drops) > 0
    assert ev_p["mean_certified_margin"] == pytest.approx(ev["mean_certified_margin"] - np.mean(drops), abs=1e-12)
    assert ev_p["min_certified_margin"] < ev["min_certified_margin"]


def test_temperature_divides_the_distillation_term(runs):
    hot = replace(thm41.REGIME, gamma=2.0)
    for r in runs:
        a, b = thm41.rhs_terms(r, "printed", thm41.REGIME), thm41.rhs_terms(r, "printed", hot)
        assert b["(8/gamma) L_dis"][0] == pytest.approx(a["(8/gamma) L_dis"][0] / 2, rel=1e-12)
        assert a["(8/gamma) L_dis"][0] == pytest.approx(8 * r["dist_loss"][0], rel=1e-12)


def test_planted_halved_factor_of_the_adversarial_loss(runs):
    """The factor 2 of eq. (9) dropped to 1: the margin falls by L_adv (~0.12) in every run."""
    reg = thm41.REGIME
    _, ev = thm41.decide(runs, "no_confidence_term", reg)
    _, ev_p = thm41.decide(runs, "no_confidence_term", reg, coeffs=dict(thm41.COEFFS, adv_loss=1.0))
    la = np.mean([r["adv_loss"][0] for r in runs])
    assert ev_p["mean_certified_margin"] == pytest.approx(ev["mean_certified_margin"] - la, abs=1e-9)
    assert 0.1 < la < 0.15


def test_planted_bound_without_its_loss_terms_is_caught(runs):
    """A 'bound' of 16/n alone is below the adversarial error (~0.08): every run a certified violation, verdict
    'fails'; with 4 R_S and the standard confidence term back it can no longer be certified to hold."""
    reg = thm41.REGIME
    only = dict(thm41.COEFFS, adv_loss=0.0, dist_loss=0.0, rademacher=0.0, confidence=0.0)
    verdict, ev = thm41.decide(runs, "printed", reg, coeffs=only)
    assert verdict == "fails" and ev["violations"] == "3/3"
    verdict, ev = thm41.decide(runs, "standard", reg, coeffs=dict(only, rademacher=4.0, confidence=6.0))
    assert verdict != "holds-certified" and ev["min_certified_margin"] < 0


@pytest.mark.parametrize("form", thm41.FORMS)
def test_planted_deficit_in_the_left_side_flips_the_verdict_at_margin_and_power(runs, form):
    reg = thm41.REGIME
    _, ev = thm41.decide(runs, form, reg)
    mm, dd, df = ev["min_certified_margin"], ev["detectable_deficit"], ev["deficit_to_fail"]
    assert thm41.decide(runs, form, reg, lhs_shift=0.99 * mm)[0] == "holds-certified"
    v, e = thm41.decide(runs, form, reg, lhs_shift=mm + 1e-6)
    assert v == "inconclusive" and e["violations"] == "0/3"
    v, e = thm41.decide(runs, form, reg, lhs_shift=dd + 1e-6)
    assert e["violations"] == "1/3"
    assert thm41.runs_to_fail(3, reg.delta) == 2
    assert thm41.decide(runs, form, reg, lhs_shift=df + 1e-6)[0] == "fails"
    assert thm41.decide(runs, form, reg, lhs_shift=df - 1e-6)[0] != "fails"


def test_old_setting_is_vacuous_and_said_so():
    rows, _ = thm41.monte_carlo(thm41.OLD_REGIME, R=2, seed=thm41.SEED)
    verdict, ev = thm41.decide(rows, "printed", thm41.OLD_REGIME)
    assert verdict == "inconclusive" and ev["vacuous"] == 2 and "vacuous" in ev["note"]
    assert page.deciding_number({"evidence": ev}).startswith("vacuous: right side >= 1")


def test_breakdown_columns_sum_to_the_right_side():
    bd = thm41.breakdown(ns=(1024, 2048), R=1)
    cols = bd["columns"]
    for row in bd["rows"]:
        r = dict(zip(cols, row))
        core = r["2 L_adv"] + r["(8/gamma) L_dis"] + r["4 R_S"] + r["16/n"]
        for f, conf in (("printed", r["conf printed"]), ("standard", r["conf standard"]), ("union", r["conf union"]),
                        ("no_confidence_term", 0.0)):
            assert r[f"rhs {f}"] == pytest.approx(core + conf, abs=1e-8)
    assert bd["rows"][0][cols.index("rhs printed")] > 1  # n = 1024: the old check's vacuous right side
    assert "n = 1024" in bd["summary"]


def test_runs_to_fail_is_the_binomial_threshold():
    from scipy import stats
    for R in (3, 6, 24):
        k = thm41.runs_to_fail(R, 0.05)
        assert stats.binom.sf(k - 1, R, 0.05) <= 0.01 < stats.binom.sf(k - 2, R, 0.05)
