"""Losses against hand-computed references and their invariances (Sec. 5.1-5.4)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from mixacm.losses import (TRANSFORMS, acm_loss, activated_channel_map, direct_feature_loss, kd_loss,
                           make_affine_maps, make_feature_adapters, mixup_ce)
from mixacm.mixup import mix_batch


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def _feat(values):
    # per-channel values laid out as (1, C, 1, 2): channel c holds [v, 0] so its max is v (v >= 0)
    v = torch.tensor(values, dtype=torch.float32)
    return torch.stack([v, torch.zeros_like(v)], -1)[None, :, None, :]


# ---------------------------------------------------------------- g_c
def test_activated_channel_map_max_and_mean():
    f = torch.tensor([[[[1.0, -2.0], [3.0, 0.0]], [[-1.0, -5.0], [-2.0, -3.0]]]])  # (1, 2, 2, 2)
    assert activated_channel_map(f).tolist() == [[3.0, -1.0]]
    assert activated_channel_map(f, "mean").tolist() == [[0.5, -2.75]]
    with pytest.raises(ValueError, match="valid: max, mean"):
        activated_channel_map(f, "median")


# ---------------------------------------------------------------- ACM, hand-computed
def test_acm_hand_computed_sum_and_mean():
    t, s = [_feat([3.0, 4.0])], [_feat([1.0, 0.0])]
    # teacher map (3,4)/5 = (0.6, 0.8); student (1, 0): |.|^2 = 0.16 + 0.64 = 0.8
    assert acm_loss(t, s, transform="none").item() == pytest.approx(0.8)
    assert acm_loss(t, s, transform="none", reduction="mean").item() == pytest.approx(0.4)
    assert acm_loss(t + t, s + s, transform="none").item() == pytest.approx(1.6)  # summed over blocks
    assert acm_loss(t + t, s + s, transform="none", blocks=[2]).item() == pytest.approx(0.8)


def test_acm_at_reference_widths_hand_computed():
    """reference_channels: each block's squared distance is summed over channels and divided by the reference
    architecture's width for that block, so alpha_acm keeps the per-channel weight it has on the reference."""
    t, s = [_feat([3.0, 4.0]), _feat([3.0, 4.0])], [_feat([1.0, 0.0]), _feat([1.0, 0.0])]  # 0.8 per block (sum)
    got = acm_loss(t, s, transform="none", reduction="mean", reference_channels=(2, 20)).item()
    assert got == pytest.approx(0.8 / 2 + 0.8 / 20)
    same = acm_loss(t, s, transform="none", reduction="mean", reference_channels=(2, 2)).item()
    assert same == pytest.approx(acm_loss(t, s, transform="none", reduction="mean").item())  # own widths: "mean"
    assert acm_loss(t, s, transform="none", reduction="mean", reference_channels=(2, 20),
                    blocks=[2]).item() == pytest.approx(0.8 / 20)
    with pytest.raises(ValueError, match="reduction='mean'"):
        acm_loss(t, s, transform="none", reduction="sum", reference_channels=(2, 20))
    with pytest.raises(ValueError, match="2 blocks"):
        acm_loss(t, s, transform="none", reduction="mean", reference_channels=(2, 20, 40))


def test_acm_batch_mean():
    t = [torch.cat([_feat([3.0, 4.0]), _feat([1.0, 1.0])])]
    s = [torch.cat([_feat([1.0, 0.0]), _feat([2.0, 2.0])])]
    assert acm_loss(t, s, transform="none").item() == pytest.approx((0.8 + 0.0) / 2)


def test_acm_adaptive_pooling_hand_computed():
    t, s = [_feat([1.0, 2.0, 3.0, 4.0])], [_feat([1.0, 2.0])]
    # teacher max-pooled 4 -> 2: (2, 4) ∝ student (1, 2) -> 0
    assert acm_loss(t, s, transform="teacher_maxpool").item() == pytest.approx(0.0, abs=1e-7)
    # teacher avg-pooled: (1.5, 3.5)/|.| vs (1, 2)/sqrt(5)
    u = torch.tensor([1.5, 3.5]) / math.hypot(1.5, 3.5)
    v = torch.tensor([1.0, 2.0]) / math.sqrt(5)
    assert acm_loss(t, s, transform="teacher_avgpool").item() == pytest.approx((u - v).pow(2).sum().item(), rel=1e-6)
    # student up-sampled 2 -> 4 by max pooling: (1, 1, 2, 2)
    v4 = torch.tensor([1.0, 1.0, 2.0, 2.0]) / math.sqrt(10)
    u4 = torch.tensor([1.0, 2.0, 3.0, 4.0]) / math.sqrt(30)
    assert acm_loss(t, s, transform="student_maxpool").item() == pytest.approx((u4 - v4).pow(2).sum().item(), rel=1e-6)
    with pytest.raises(ValueError, match="teacher_maxpool"):
        acm_loss(t, s, transform="none")


def test_acm_affine_maps_and_gradients():
    t = [torch.rand(2, 6, 3, 3, requires_grad=True)]
    s = [torch.rand(2, 4, 3, 3, requires_grad=True)]
    maps = make_affine_maps([6], [4], "teacher")
    loss = acm_loss(t, s, transform="teacher_affine", affine=maps)
    loss.backward()
    assert t[0].grad is None  # teacher is a fixed target
    assert s[0].grad is not None and maps[0].weight.grad is not None
    maps_s = make_affine_maps([6], [4], "student")
    assert maps_s[0].in_features == 4 and maps_s[0].out_features == 6
    acm_loss(t, s, transform="student_affine", affine=maps_s)
    with pytest.raises(ValueError, match="make_affine_maps"):
        acm_loss(t, s, transform="student_affine")


def test_acm_bad_arguments():
    f = [torch.rand(1, 2, 2, 2)]
    for kw, msg in [({"transform": "pool"}, "valid: none"), ({"reduction": "avg"}, "valid: sum, mean"),
                    ({"blocks": [0]}, "1-based"), ({"blocks": [2]}, "1-based")]:
        with pytest.raises(ValueError, match=msg):
            acm_loss(f, f, **kw)
    with pytest.raises(ValueError, match="must match"):
        acm_loss(f, f + f)


# ---------------------------------------------------------------- ACM invariances (hypothesis)
shapes = st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 3), st.integers(1, 3))


@given(shape=shapes, seed=st.integers(0, 2**16), mapping=st.sampled_from(["max", "mean"]),
       scales=st.lists(st.floats(0.01, 100.0), min_size=8, max_size=8))
def test_acm_invariant_to_positive_per_sample_scaling(shape, seed, mapping, scales):
    g = torch.Generator().manual_seed(seed)
    t = [torch.rand(shape, generator=g) + 0.1]
    s = [torch.randn(shape, generator=g, dtype=torch.float64).float()]
    c = torch.tensor(scales[: shape[0]]).view(-1, 1, 1, 1)
    base = acm_loss(t, s, transform="none", mapping=mapping)
    scaled = acm_loss([t[0] * c], [s[0] * c.flip(0)], transform="none", mapping=mapping)
    torch.testing.assert_close(scaled, base, rtol=1e-5, atol=1e-6)


@given(shape=shapes, seed=st.integers(0, 2**16), k=st.floats(0.01, 100.0))
def test_acm_zero_iff_maps_proportional(shape, seed, k):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(shape, generator=g) + 0.1
    s = torch.rand(shape, generator=g) + 0.1
    # proportional maps -> 0 (here proportional features; the spatial pattern is irrelevant for "max")
    assert acm_loss([t], [k * t], transform="none").item() == pytest.approx(0.0, abs=1e-6)
    # in general the loss equals mean_b (2 - 2 cos(a_T, a_S)): zero iff cos = 1, i.e. proportional maps
    a_t, a_s = activated_channel_map(t), activated_channel_map(s)
    cos = F.cosine_similarity(a_t, a_s, dim=1)
    torch.testing.assert_close(acm_loss([t], [s], transform="none"), (2 - 2 * cos).mean(), rtol=1e-5, atol=1e-6)
    if shape[1] > 1 and (cos < 1 - 1e-4).any():
        assert acm_loss([t], [s], transform="none").item() > 0


@given(n_blocks=st.integers(1, 4), seed=st.integers(0, 2**16), c=st.integers(1, 5))
def test_acm_bounded(n_blocks, seed, c):
    g = torch.Generator().manual_seed(seed)
    t = [torch.randn(3, c, 2, 2, generator=g) for _ in range(n_blocks)]
    s = [-tt for tt in t] if seed % 2 else [torch.randn(3, c, 2, 2, generator=g) for _ in range(n_blocks)]
    v = acm_loss(t, s, transform="none").item()
    assert 0 <= v <= 4 * n_blocks + 1e-5
    vm = acm_loss(t, s, transform="none", reduction="mean").item()
    assert vm == pytest.approx(v / c, rel=1e-5, abs=1e-7)  # same channel count in every block


def test_acm_reaches_upper_bound_for_opposite_maps():
    # antipodal maps a_T = (1, 0), a_S = (-1, 0) (possible for "pre" features, which can be negative): 4
    t = [torch.tensor([[[[1.0]], [[0.0]]]])]
    s = [torch.tensor([[[[-1.0]], [[0.0]]]])]
    assert acm_loss(t, s, transform="none").item() == pytest.approx(4.0)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_every_transform_runs_on_mismatched_channels(transform):
    t = [torch.rand(2, 8, 4, 4), torch.rand(2, 6, 2, 2)]
    s = [torch.rand(2, 4, 4, 4), torch.rand(2, 6, 2, 2)]
    if transform == "none":
        assert acm_loss(t[1:], s[1:], transform="none").item() >= 0
        return
    side = transform.split("_")[0]
    affine = make_affine_maps([8, 6], [4, 6], side) if transform.endswith("affine") else None
    v = acm_loss(t, s, transform=transform, affine=affine)
    assert v.dim() == 0 and 0 <= v.item() <= 8


# ---------------------------------------------------------------- KD
def test_kd_hand_computed():
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[20.0, 0.0]])
    # gamma = 10: p_T = softmax(2, 0), p_S = (1/2, 1/2); KL = sum p_T log(p_T / p_S), times gamma^2
    p = torch.softmax(torch.tensor([2.0, 0.0]), 0)
    ref = 100 * (p * (p / 0.5).log()).sum().item()
    assert kd_loss(s, t).item() == pytest.approx(ref, rel=1e-6)
    assert kd_loss(s, t, temperature=1.0).item() == pytest.approx(
        (torch.softmax(t[0], 0) * (torch.softmax(t[0], 0) / 0.5).log()).sum().item(), rel=1e-5)
    # batchmean: two identical rows give the same value as one
    assert kd_loss(s.repeat(2, 1), t.repeat(2, 1)).item() == pytest.approx(ref, rel=1e-6)


@given(seed=st.integers(0, 2**16), shift=st.floats(-50, 50), gamma=st.floats(0.5, 20))
def test_kd_nonnegative_and_zero_iff_equal_up_to_shift(seed, shift, gamma):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(4, 5, generator=g) * 3
    t = torch.randn(4, 5, generator=g) * 3
    assert kd_loss(s, t, gamma).item() >= 0
    assert kd_loss(s, s + shift, gamma).item() == pytest.approx(0.0, abs=1e-4)
    assert kd_loss(s, t, gamma).item() > 0


def test_kd_gradient_only_to_student_and_class_mismatch():
    s = torch.randn(3, 4, requires_grad=True)
    t = torch.randn(3, 4, requires_grad=True)
    kd_loss(s, t).backward()
    assert s.grad is not None and t.grad is None
    with pytest.raises(ValueError, match="Table 5"):
        kd_loss(torch.randn(2, 10), torch.randn(2, 100))


# ---------------------------------------------------------------- mixup
def test_mixup_ce_reduces_to_ce():
    z = torch.randn(5, 3)
    y = torch.tensor([0, 1, 2, 1, 0])
    yb = torch.tensor([2, 2, 0, 0, 1])
    torch.testing.assert_close(mixup_ce(z, y, yb, 1.0), F.cross_entropy(z, y))
    torch.testing.assert_close(mixup_ce(z, y, yb, 0.0), F.cross_entropy(z, yb))
    torch.testing.assert_close(mixup_ce(z, y, yb, 0.3), 0.3 * F.cross_entropy(z, y) + 0.7 * F.cross_entropy(z, yb))


def test_mix_batch_bookkeeping():
    b = 6
    x = torch.eye(b).view(b, 1, b, 1)  # sample i is the one-hot e_i: mixing reveals the permutation
    y = torch.arange(b) * 10
    x_mix, y_a, y_b, lam = mix_batch(x, y, 1.0, torch.Generator().manual_seed(3))
    assert x_mix.shape == x.shape and 0 < lam < 1 and isinstance(lam, float)
    flat = x_mix.view(b, b)
    assert torch.equal(y_a, y)
    for i in range(b):
        j = int(y_b[i]) // 10  # partner according to labels
        expect = lam * torch.eye(b)[i] + (1 - lam) * torch.eye(b)[j]
        torch.testing.assert_close(flat[i], expect)
    assert sorted(y_b.tolist()) == sorted(y.tolist())


def test_mix_batch_deterministic_and_alpha_zero():
    x, y = torch.rand(8, 3, 4, 4), torch.arange(8)
    a = mix_batch(x, y, 1.0, torch.Generator().manual_seed(7))
    b = mix_batch(x, y, 1.0, torch.Generator().manual_seed(7))
    c = mix_batch(x, y, 1.0, torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[2], b[2]) and a[3] == b[3]
    assert a[3] != c[3]
    x0, ya, yb, lam = mix_batch(x, y, 0.0)
    assert x0 is x and lam == 1.0 and torch.equal(ya, yb)
    with pytest.raises(ValueError):
        mix_batch(x, y, -1.0)


def test_mix_batch_lambda_distribution():
    g = torch.Generator().manual_seed(0)
    lams = torch.tensor([mix_batch(torch.zeros(2, 1), torch.zeros(2), 0.2, g)[3] for _ in range(2000)])
    # Beta(0.2, 0.2): mean 1/2, variance 1/(4 (2 alpha + 1)) = 0.1786
    assert abs(lams.mean().item() - 0.5) < 0.03 and abs(lams.var().item() - 0.25 / 1.4) < 0.02


# ---------------------------------------------------------------- direct feature loss (Table 8)
def test_direct_feature_loss_reference_and_errors():
    t = [torch.ones(1, 2, 2, 2), torch.zeros(1, 3, 1, 1)]
    s = [torch.zeros(1, 2, 2, 2), torch.full((1, 3, 1, 1), 2.0)]
    assert direct_feature_loss(t, s).item() == pytest.approx(1.0 + 4.0)
    assert direct_feature_loss(t, s, blocks=[2]).item() == pytest.approx(4.0)
    s_wide = [torch.zeros(1, 4, 2, 2), s[1]]
    with pytest.raises(ValueError, match="make_feature_adapters"):
        direct_feature_loss(t, s_wide)
    adapters = make_feature_adapters([2, 3], [4, 3])
    v = direct_feature_loss(t, s_wide, adapters=adapters)
    assert v.item() == pytest.approx(1.0 + 4.0)  # adapter on a zero feature gives zeros


# ---------------------------------------------------------------- bf16 autocast: losses stay fp32
@pytest.mark.parametrize("mapping", ["max", "mean"])
def test_losses_are_fp32_under_bf16_autocast(mapping):
    g = torch.Generator().manual_seed(0)
    shapes_t, shapes_s = [(8, 32, 8, 8), (8, 64, 4, 4)], [(8, 16, 8, 8), (8, 64, 4, 4)]
    ft = [torch.randn(s, generator=g).bfloat16() for s in shapes_t]  # what a bf16-autocast model hands over
    fs = [torch.randn(s, generator=g).bfloat16().requires_grad_() for s in shapes_s]
    zs = (3 * torch.randn(8, 10, generator=g)).bfloat16().requires_grad_()
    zt = (3 * torch.randn(8, 10, generator=g)).bfloat16()
    ya, yb = torch.randint(0, 10, (8,), generator=g), torch.randint(0, 10, (8,), generator=g)
    adapters = make_feature_adapters([32, 64], [16, 64])
    affine = make_affine_maps([32, 64], [16, 64], "teacher")
    calls = {
        "acm": lambda t, s, zs_, zt_: acm_loss(t, s, mapping=mapping),
        "acm_affine": lambda t, s, zs_, zt_: acm_loss(t, s, mapping=mapping, transform="teacher_affine",
                                                      affine=affine),
        "kd": lambda t, s, zs_, zt_: kd_loss(zs_, zt_, temperature=10.0),
        "mixup_ce": lambda t, s, zs_, zt_: mixup_ce(zs_, ya, yb, 0.3),
        "direct": lambda t, s, zs_, zt_: direct_feature_loss(t, s, adapters=adapters),
    }
    for name, fn in calls.items():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = fn(ft, fs, zs, zt)
        assert got.dtype == torch.float32, name
        ref = fn([f.float() for f in ft], [f.float() for f in fs], zs.float(), zt.float())  # fp32, no autocast
        assert ref.dtype == torch.float32
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6, msg=name)
        got.backward()
        assert fs[-1].grad is not None or zs.grad is not None
    assert fs[0].grad.dtype == torch.bfloat16  # gradients flow back into the bf16 activations


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_channel_max_gradient_is_amax_gradient(dtype, channels_last):
    # g_c's custom backward must give PyTorch's amax gradient bit for bit, ties (split evenly) included
    g = torch.Generator().manual_seed(0)
    f = torch.randn(4, 6, 5, 5, generator=g).relu()  # whole zero channels: ties everywhere
    f[0, 0] = 0.0
    f[1, 2, 1:3, 1:4] = 7.0  # six tied maxima
    f[2, 3] = f[2, 3].round()  # small-integer values: many ties
    f = f.to(dtype)
    if channels_last:
        f = f.contiguous(memory_format=torch.channels_last)
    w = torch.randn(4, 6, generator=g).to(dtype)
    a = f.clone().requires_grad_()
    (activated_channel_map(a) * w).sum().backward()
    b = f.clone().requires_grad_()
    (b.flatten(2).amax(dim=2) * w).sum().backward()
    assert torch.equal(activated_channel_map(f), f.flatten(2).amax(dim=2))
    assert a.grad.dtype == dtype and torch.equal(a.grad, b.grad)
