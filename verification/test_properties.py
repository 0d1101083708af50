"""Smoke tier: hypothesis property tests across the project (losses, mixup, attacks, worst-case aggregation).

Depends on mixacm.losses (ACM/KD/mixup-CE), mixacm.mixup (mix_batch), mixacm.attacks (pgd_linf, fgsm) and
mixacm.evaluate (evaluate's worst case); imported lazily so one missing module skips only its tests.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.smoke

SEEDS = st.integers(0, 2**31 - 1)
FAST = settings(max_examples=15, deadline=None)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _feats(seed, b=3, chans=(4, 6), hw=5, relu=True):
    g = torch.Generator().manual_seed(seed)
    fs = [torch.randn(b, c, hw, hw, generator=g) for c in chans]
    return [f.relu() + 1e-3 for f in fs] if relu else fs


# ------------------------------------------------------------------------------------------------ ACM loss
@FAST
@given(seed=SEEDS, scale=st.floats(0.01, 100.0))
def test_acm_invariant_to_positive_scale_and_spatial_permutation(seed, scale):
    L = pytest.importorskip("mixacm.losses")
    ft, fs = _feats(seed), _feats(seed + 1)
    base = L.acm_loss(ft, fs, transform="none")
    scaled = L.acm_loss(ft, [f * scale for f in fs], transform="none")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(25, generator=g)
    shuffled = [f.flatten(2)[:, :, perm].reshape(f.shape) for f in fs]  # same values per channel, other places
    assert torch.allclose(base, scaled, atol=1e-5)
    assert torch.allclose(base, L.acm_loss(ft, shuffled, transform="none"), atol=1e-6)


@FAST
@given(seed=SEEDS)
def test_acm_bounds_and_zero_at_equality(seed):
    L = pytest.importorskip("mixacm.losses")
    ft, fs = _feats(seed), _feats(seed + 7)
    loss = float(L.acm_loss(ft, fs, transform="none", reduction="sum"))
    # unit vectors with non-negative entries: ||u - v||^2 = 2 - 2 u.v in [0, 2] per block
    assert -1e-6 <= loss <= 2.0 * len(ft) + 1e-6
    assert float(L.acm_loss(ft, ft, transform="none")) == pytest.approx(0.0, abs=1e-6)
    signed = float(L.acm_loss(_feats(seed, relu=False), _feats(seed + 3, relu=False), transform="none"))
    assert -1e-6 <= signed <= 4.0 * len(ft) + 1e-6  # any sign: [0, 4] per block


@FAST
@given(seed=SEEDS)
def test_acm_teacher_pool_handles_channel_mismatch(seed):
    L = pytest.importorskip("mixacm.losses")
    ft, fs = _feats(seed, chans=(8, 12)), _feats(seed + 1, chans=(4, 6))
    for tr in ("teacher_maxpool", "teacher_avgpool", "student_maxpool", "student_avgpool"):
        v = float(L.acm_loss(ft, fs, transform=tr))
        assert 0.0 <= v <= 2.0 * len(ft) + 1e-6


# ------------------------------------------------------------------------------------------------ KD loss
@FAST
@given(seed=SEEDS, shift=st.floats(-50, 50), temp=st.floats(0.5, 20.0))
def test_kd_nonnegative_and_zero_iff_same_distribution(seed, shift, temp):
    L = pytest.importorskip("mixacm.losses")
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(4, 10, generator=g) * 3
    w = torch.randn(4, 10, generator=g) * 3
    assert float(L.kd_loss(z, w, temperature=temp)) >= -1e-6
    assert float(L.kd_loss(z, z + shift, temperature=temp)) == pytest.approx(0.0, abs=1e-4)  # softmax shift-invariant
    p, q = torch.softmax(z / temp, 1), torch.softmax(w / temp, 1)
    if (p - q).abs().max() > 1e-2:
        assert float(L.kd_loss(z, w, temperature=temp)) > 0.0


# ------------------------------------------------------------------------------------------------ mixup
@FAST
@given(seed=SEEDS, alpha=st.floats(0.05, 5.0))
def test_mix_batch_identities(seed, alpha):
    M = pytest.importorskip("mixacm.mixup")
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(6, 1, 3, 3, generator=g), torch.randint(0, 4, (6,), generator=g)
    x_mix, y_a, y_b, lam = M.mix_batch(x, y, alpha, generator=torch.Generator().manual_seed(seed))
    assert 0.0 <= lam <= 1.0 and torch.equal(y_a, y)
    assert sorted(y_b.tolist()) == sorted(y.tolist())  # y_b is a permutation of y
    assert x_mix.min() >= x.min() - 1e-6 and x_mix.max() <= x.max() + 1e-6  # convex combination stays in range
    x0, ya0, yb0, lam0 = M.mix_batch(x, y, 0.0)
    assert lam0 == 1.0 and torch.equal(x0, x) and torch.equal(yb0, y)


@FAST
@given(seed=SEEDS, lam=st.floats(0.0, 1.0))
def test_mixup_ce_identities(seed, lam):
    L = pytest.importorskip("mixacm.losses")
    F = torch.nn.functional
    g = torch.Generator().manual_seed(seed)
    z, ya, yb = torch.randn(5, 4, generator=g), torch.randint(0, 4, (5,), generator=g), torch.randint(0, 4, (5,), generator=g)
    assert torch.allclose(L.mixup_ce(z, ya, ya, lam), F.cross_entropy(z, ya), atol=1e-6)
    assert torch.allclose(L.mixup_ce(z, ya, yb, 1.0), F.cross_entropy(z, ya), atol=1e-6)
    mixed = L.mixup_ce(z, ya, yb, lam)
    assert torch.allclose(mixed, lam * F.cross_entropy(z, ya) + (1 - lam) * F.cross_entropy(z, yb), atol=1e-6)


# ------------------------------------------------------------------------------------------------ attacks
def _tiny_model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)).eval()


@settings(max_examples=10, deadline=None)
@given(seed=SEEDS, eps=st.floats(0.001, 0.3), steps=st.integers(1, 4))
def test_attacks_stay_in_eps_ball_and_unit_box(seed, eps, steps):
    A = pytest.importorskip("mixacm.attacks")
    model = _tiny_model(seed)
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(4, 3, 2, 2, generator=g), torch.randint(0, 3, (4,), generator=g)
    for x_adv in (A.pgd_linf(model, x, y, eps=eps, step_size=eps / 2, steps=steps, generator=g),
                  A.fgsm(model, x, y, eps=eps)):
        assert (x_adv - x).abs().max() <= eps + 1e-6
        assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


@settings(max_examples=5, deadline=None)
@given(seed=SEEDS)
def test_worst_case_is_monotone_in_the_attack_set(seed):
    E = pytest.importorskip("mixacm.evaluate")
    model = _tiny_model(seed)
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(16, 3, 2, 2, generator=g), torch.randint(0, 3, (16,), generator=g)
    kw = dict(eps=8 / 255, seed=seed, progress=False, batch_size=16)
    one = E.evaluate(model, x, y, attacks=["fgsm"], **kw)
    two = E.evaluate(model, x, y, attacks=["fgsm", "pgd5"], **kw)
    w1, w2 = one["worst_case"]["robust_accuracy"], two["worst_case"]["robust_accuracy"]
    assert w2 <= w1 + 1e-9  # more attacks can only lower the worst case
    assert w2 <= min(a["robust_accuracy"] for a in two["attacks"].values()) + 1e-9
    assert w1 <= one["clean"]["accuracy"] + 1e-9
