"""theory.beta_mixture: symbolic steps, the time limit, and the numeric identity over (a, b, n, d)."""
import time

import numpy as np
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import beta_mixture as bm
from theory.claims import VERDICTS


def test_every_symbolic_step_is_proved():
    for cid, (fn, _stmt, _key) in bm.STEPS.items():
        proved, secs = bm.run_limited(fn)
        assert proved is True, f"{cid}: sympy did not prove the step (got {proved!r} in {secs}s)"


def test_prover_rejects_a_false_identity():
    # wrong parameter on the right side: lam Beta(a,b) != a/(a+b) Beta(a, b+1)
    wrong = lambda: bm._is_zero(bm.lam * bm._pdf(bm.lam, bm.a, bm.b) - bm.a / (bm.a + bm.b) * bm._pdf(bm.lam, bm.a, bm.b + 1))  # noqa: E731
    assert bm.run_limited(wrong)[0] is False
    assert bm.run_limited(lambda: bm._is_zero(bm.a * bm.b / ((bm.a + bm.b) * (bm.a + bm.b + 1)) - sp.Rational(1, 4)))[0] is False


def test_time_limit_gives_no_verdict():
    t0 = time.time()
    result, _ = bm.run_limited(lambda: time.sleep(30) or True, seconds=0.5)
    assert result is None and time.time() - t0 < 5


def test_checks_schema_and_verdicts():
    claims = bm.checks()
    ids = {c.id for c in claims}
    assert {"beta.joint_b1", "beta.joint_b0", "beta.reflection", "beta.mixture_mean", "beta.mixture_second_moment", "beta.mixup_loss_identity"} <= ids
    for c in claims:
        assert c.verdict in VERDICTS and c.evidence
        if c.id != "beta.mixup_loss_identity":
            assert c.verdict == "holds-exact", (c.id, c.evidence)
    ident = next(c for c in claims if c.id == "beta.mixup_loss_identity")
    assert ident.evidence["max_rel_gap"] < 1e-10
    assert bm.errata() == [] or all(e.location for e in bm.errata())


@settings(deadline=None, max_examples=12)
@given(
    a=st.floats(0.05, 6.0), b=st.floats(0.05, 6.0), n=st.integers(1, 4), d=st.integers(1, 4), k=st.sampled_from([1, 3]),
    kind=st.sampled_from(["linear", "tanh"]), seed=st.integers(0, 10_000),
)
def test_mixup_identity_property(a, b, n, d, k, kind, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * 2
    Y = rng.uniform(size=n) if k == 1 else rng.dirichlet(np.ones(k), size=n)
    lhs, rhs = bm.mixup_identity_gap(X, Y, bm.random_model(rng, d, k, kind), bm.label_linear_loss(k), a, b)
    tol = 1e-10 * max(1.0, abs(lhs))
    assert abs(lhs - rhs) <= tol, f"expected {lhs}, got {rhs}, difference {abs(lhs - rhs):.3g}, tolerance {tol:.3g} (Supp. B.2 identity)"


def test_identity_fails_for_a_loss_not_linear_in_the_label():
    # squared error (f - y)^2 is not linear in y: the P~ rewrite must NOT hold, showing the check can fail
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(3, 2)), rng.uniform(size=3)
    W = rng.normal(size=(1, 2))
    lhs, rhs = bm.mixup_identity_gap(X, Y, lambda x: W @ x, lambda f, y: float((f[0] - y) ** 2), 0.5, 0.5)
    assert abs(lhs - rhs) > 1e-4


def test_closed_form_moments_match_sympy_numbers():
    for a_, b_ in ((0.3, 0.7), (2.0, 5.0)):
        m1 = 2 * a_ * b_ / ((a_ + b_) * (a_ + b_ + 1))
        assert abs(bm.mixture_expectation(lambda t: 1 - t, a_, b_) - m1) < 1e-13
        assert abs(bm.mixture_expectation(lambda t: (1 - t) ** 2, a_, b_) - m1 / 2) < 1e-13
        assert bm.mixture_second_moment_one_minus(a_, b_) >= bm.mixture_mean_one_minus(a_, b_) ** 2
