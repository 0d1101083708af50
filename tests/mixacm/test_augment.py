"""Batched RandAugment (mixacm.data.randaugment) against torchvision.transforms.v2.

Reference = torchvision.transforms.v2.functional applied image by image. Tolerances:
  * float path (torchvision's kernel on the same float image): geometric ops (ShearX/Y, TranslateX/Y, Rotate; nearest
    interpolation, so nothing is interpolated), Identity, Posterize, Solarize, AutoContrast, Equalize are exact
    (torch.equal); Brightness, Color, Contrast, Sharpness within 1e-6 (float32 rounding of the same blend).
  * uint8 path (torchvision's kernel on the uint8 image, /255): geometric ops, Identity, Solarize, Equalize exact;
    Brightness, Posterize, AutoContrast within 1/255 (uint8 truncation; float Posterize keeps 2**bits levels of
    [0,1) where uint8 masks bits); Color, Contrast, Sharpness within 1.5/255 (uint8 truncation plus torchvision's
    floored grey / rounded blur on uint8).
"""
from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2

from mixacm import data as D
from mixacm.data import RA_OPS, augment, randaugment, randaugment_draw, random_crop_flip

EXACT_FLOAT = {"Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Posterize", "Solarize",
               "AutoContrast", "Equalize"}
UINT8_TOL = {"Identity": 0, "ShearX": 0, "ShearY": 0, "TranslateX": 0, "TranslateY": 0, "Rotate": 0, "Solarize": 0,
             "Equalize": 0, "Brightness": 1, "Posterize": 1, "AutoContrast": 1, "Color": 1.5, "Contrast": 1.5,
             "Sharpness": 1.5}  # in units of 1/255


def _uint8_batch(b=24, c=3, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    xu = torch.randint(0, 256, (b, c, h, w), dtype=torch.uint8, generator=g)
    xu[0] = 7  # constant image (AutoContrast/Equalize degenerate cases)
    xu[1] = (xu[1] // 64) * 64  # four levels
    xu[2] = xu[2] // 4 + 100  # narrow range
    xu[3, :, :, :16] = 255
    return xu


def _tv(img, op, m):
    """torchvision's RandAugment op (its own dispatch, nearest interpolation, default fill) at signed magnitude m."""
    ra = v2.RandAugment()
    return ra._apply_image_or_video_transform(img, op, m, interpolation=ra.interpolation, fill=ra._fill)


def _ours(x, op, m):
    k = RA_OPS.index(op)
    b = x.shape[0]
    if op == "Identity":
        return x
    if op in D._RA_GEOMETRIC:
        theta = torch.tensor(D._ra_theta(op, m, x.shape[-2], x.shape[-1]), dtype=torch.float32).view(1, 2, 3)
        return D.ra_affine(x, theta.expand(b, 2, 3))
    assert k >= 6
    return D._RA_COLOR_FNS[op](x, D._ra_color_factor(op, torch.full((b,), m)))


def test_op_table_matches_torchvision():
    space = v2.RandAugment._AUGMENTATION_SPACE
    assert RA_OPS == tuple(space)
    for h, w in ((32, 32), (8, 8), (24, 40)):
        mine = D._ra_magnitude_table(31, 9, h, w)
        for op, (m, signed) in zip(RA_OPS, mine):
            fn, tv_signed = space[op]
            ref = fn(31, h, w)
            assert signed == tv_signed
            assert m == (0.0 if ref is None else float(ref[9])), op


_SIGNED = {op for op, (_, signed) in v2.RandAugment._AUGMENTATION_SPACE.items() if signed}


@pytest.mark.parametrize("op,sign", [(op, s) for op in RA_OPS for s in ((1.0, -1.0) if op in _SIGNED else (1.0,))])
def test_batched_op_equals_torchvision_per_image(op, sign):
    xu = _uint8_batch()
    x = xu.float() / 255
    m = sign * D._ra_magnitude_table(31, 9, 32, 32)[RA_OPS.index(op)][0]
    ours = _ours(x, op, m)
    assert ours.shape == x.shape and ours.dtype == x.dtype
    ref_f = torch.stack([_tv(img, op, m) for img in x])
    if op in EXACT_FLOAT:
        assert torch.equal(ours, ref_f), f"{op}: max diff {(ours - ref_f).abs().max()}"
    else:
        torch.testing.assert_close(ours, ref_f, rtol=0, atol=1e-6)
    ref_u = torch.stack([_tv(img, op, m) for img in xu]).float() / 255
    tol = UINT8_TOL[op] / 255 + 1e-6
    assert (ours - ref_u).abs().max() <= tol, f"{op}: uint8-path diff {(ours - ref_u).abs().max() * 255:.3f}/255"


@pytest.mark.parametrize("shape", [(6, 1, 8, 8), (5, 3, 24, 40)])
def test_ops_other_shapes(shape):
    b, c, h, w = shape
    x = _uint8_batch(b, c, h, w, seed=1).float() / 255
    for op, (m, signed) in zip(RA_OPS, D._ra_magnitude_table(31, 9, h, w)):
        m = -m if signed else m
        ref = torch.stack([_tv(img, op, m) for img in x])
        torch.testing.assert_close(_ours(x, op, m), ref, rtol=0, atol=1e-6, msg=op)


def test_randaugment_equals_torchvision_ops_with_the_drawn_choices():
    """End to end: each sample gets torchvision's op sequence for its own drawn (op, sign) pairs."""
    xu = _uint8_batch(40, seed=2)
    x = xu.float() / 255
    out = randaugment(x, torch.Generator().manual_seed(11))
    ops, neg = randaugment_draw(len(x), 2, torch.Generator().manual_seed(11))
    space = v2.RandAugment._AUGMENTATION_SPACE
    for i in range(len(x)):
        img = x[i]
        for r in range(2):
            op = RA_OPS[ops[r, i]]
            fn, signed = space[op]
            mags = fn(31, 32, 32)
            m = 0.0 if mags is None else float(mags[9])
            if signed and neg[r, i]:
                m = -m
            img = _tv(img, op, m)
        torch.testing.assert_close(out[i], img, rtol=0, atol=2e-6, msg=f"sample {i}: {RA_OPS[ops[0, i]]}, "
                                                                       f"{RA_OPS[ops[1, i]]}")


def test_per_sample_randomness_determinism_range():
    x = torch.rand(1, 3, 32, 32).expand(64, -1, -1, -1).contiguous()  # identical samples
    a = randaugment(x, torch.Generator().manual_seed(5))
    b = randaugment(x, torch.Generator().manual_seed(5))
    c = randaugment(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.dtype == x.dtype and a.device == x.device
    assert 0 <= a.min() and a.max() <= 1
    distinct = {tuple(s.flatten()[:64].tolist()) for s in a}
    assert len(distinct) > 20, "identical inputs should get different ops per sample"
    ops, neg = randaugment_draw(64, 2, torch.Generator().manual_seed(5))
    assert len(ops[0].unique()) > 5 and 0 < neg.sum() < neg.numel()
    x64 = x.double()
    assert randaugment(x64, torch.Generator().manual_seed(5)).dtype == torch.float64


def test_generator_is_the_only_randomness():
    x = torch.rand(16, 3, 32, 32)
    torch.manual_seed(0)
    a = randaugment(x, torch.Generator().manual_seed(1))
    torch.manual_seed(123)  # global RNG must not matter
    b = randaugment(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda_like_cpu():
    x = torch.rand(32, 3, 32, 32)
    a = augment(x, "randaugment", torch.Generator().manual_seed(3))
    b = augment(x.cuda(), "randaugment", torch.Generator().manual_seed(3))
    assert b.device.type == "cuda"
    torch.testing.assert_close(b.cpu(), a, rtol=0, atol=1e-5)


def test_augment_randaugment_is_randaugment_then_crop_flip():
    x = torch.rand(12, 3, 32, 32)
    got = augment(x, "randaugment", torch.Generator().manual_seed(9))
    g = torch.Generator().manual_seed(9)
    want = random_crop_flip(randaugment(x, g), 4, g)
    assert torch.equal(got, want)


def test_no_loop_over_samples(monkeypatch):
    """Kernel calls per batch are bounded by the number of ops, not the batch size; torchvision's per-image
    RandAugment is not used."""
    calls = {"grid_sample": 0, "color": 0}
    real_gs = torch.nn.functional.grid_sample

    def gs(*a, **k):
        calls["grid_sample"] += 1
        return real_gs(*a, **k)

    def counted(fn):
        def f(*a, **k):
            calls["color"] += 1
            return fn(*a, **k)
        return f

    monkeypatch.setattr(torch.nn.functional, "grid_sample", gs)
    monkeypatch.setattr(D, "_RA_COLOR_FNS", {k: counted(v) for k, v in D._RA_COLOR_FNS.items()})
    monkeypatch.setattr(v2.RandAugment, "forward", lambda *a, **k: pytest.fail("per-image torchvision RandAugment"))
    for b in (8, 512):
        calls.update(grid_sample=0, color=0)
        randaugment(torch.rand(b, 3, 32, 32), torch.Generator().manual_seed(0))
        assert calls["grid_sample"] <= 2, calls  # one batched warp per round
        assert calls["color"] <= 2 * 8, calls  # at most one call per colour op per round
    assert calls["grid_sample"] == 2 and calls["color"] == 16  # batch 512: every op group occurs in both rounds


def test_geometric_ops_need_no_interpolation():
    # nearest interpolation: every output pixel is an input pixel of the same sample/channel, or the zero fill
    x = torch.rand(4, 3, 32, 32)
    for op in D._RA_GEOMETRIC:
        m = D._ra_magnitude_table(31, 9, 32, 32)[RA_OPS.index(op)][0]
        y = _ours(x, op, m)
        for i in range(4):
            vals = set(x[i].flatten().tolist()) | {0.0}
            assert set(y[i].flatten().tolist()) <= vals, op
