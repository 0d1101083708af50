"""Feature contract (forward_intermediates / feature_info), parameter counts (paper Tables 4/10) and the RobustBench
(Gowal et al.) layout."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from mixacm.models import MODELS, build_model, count_parameters


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


# (name, kw, input shape): small instances of every family
CASES = [
    ("wrn-16-1", {}, (2, 3, 32, 32)),
    ("wrn-10-2-swish", {}, (2, 3, 32, 32)),
    ("wrn-10-1", {"in_channels": 1}, (2, 1, 8, 8)),
    ("gowal-wrn-16-1", {}, (2, 3, 32, 32)),
    ("gowal-wrn-10-1-relu", {"in_channels": 1}, (2, 1, 8, 8)),
    ("preact-resnet18", {}, (2, 3, 32, 32)),
    ("resnet50", {}, (2, 3, 32, 32)),
    ("smallcnn", {}, (2, 3, 32, 32)),
    ("smallcnn", {"in_channels": 1}, (2, 1, 8, 8)),
]


def _count(name: str, num_classes: int = 10) -> int:
    with torch.device("meta"):  # no memory, no init cost
        return count_parameters(build_model(name, num_classes))


@pytest.mark.parametrize("name,kw,shape", CASES, ids=[f"{c[0]}-{c[2][1]}ch" for c in CASES])
@pytest.mark.parametrize("fp", ["pre", "post"])
def test_feature_contract(name, kw, shape, fp):
    torch.manual_seed(0)
    model = build_model(name, num_classes=7, feature_point=fp, **kw).eval()
    x = torch.rand(shape)
    logits, feats = model.forward_intermediates(x)
    assert logits.shape == (shape[0], 7)
    got = [f.shape[1] for f in feats]
    declared = [f["num_chs"] for f in model.feature_info]
    assert got == declared, f"declared {declared}, real {got}"
    assert all(f.dim() == 4 and f.shape[0] == shape[0] for f in feats)
    out = model(x)
    assert isinstance(out, torch.Tensor) and torch.equal(out, logits)  # model(x) -> logits only


@pytest.mark.parametrize("name", ["wrn-16-1", "gowal-wrn-16-1-relu", "preact-resnet18", "smallcnn"])
def test_post_features_are_activated_pre_features(name):
    # "post" = BN+act applied to the "pre" feature; for the last block that is the model's final BN+act,
    # so the logits are the head applied to the pooled last post feature.
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.rand(2, 3, 32, 32)
    _, pre = model.forward_intermediates(x, "pre")
    logits, post = model.forward_intermediates(x, "post")
    assert all(a.shape == b.shape for a, b in zip(pre, post))
    assert all(not torch.equal(a, b) for a, b in zip(pre, post))
    assert all((p >= 0).all() for p in post)  # ReLU
    head = dict(model.named_children())
    fc = head.get("fc") or head.get("logits")
    torch.testing.assert_close(fc(post[-1].mean((2, 3))), logits)


def test_forward_intermediates_is_one_forward_pass():
    model = build_model("wrn-16-1").eval()
    calls: dict[str, int] = {}
    for n, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
            m.register_forward_hook(lambda mod, i, o, n=n: calls.__setitem__(n, calls.get(n, 0) + 1))
    model.forward_intermediates(torch.rand(1, 3, 32, 32), "post")
    assert set(calls.values()) == {1}, {k: v for k, v in calls.items() if v != 1}


# (name, kw, input sizes (H, W)): every family, sizes that the deepest reduction divides, some not square
SIZES = [
    ("wrn-16-1", {}, [(8, 8), (32, 32), (16, 40)]),
    ("wrn-10-2-swish", {}, [(32, 32), (24, 16)]),
    ("wrn-10-1", {"in_channels": 1}, [(8, 8), (12, 20)]),
    ("gowal-wrn-16-1", {}, [(8, 8), (32, 32), (16, 40)]),
    ("gowal-wrn-10-1-relu", {"in_channels": 1}, [(8, 8), (12, 20)]),
    ("preact-resnet18", {}, [(16, 16), (32, 32), (24, 40)]),
    ("resnet50", {}, [(32, 32), (64, 64), (32, 96)]),
    ("resnet50", {"in_channels": 1}, [(32, 32)]),
    ("smallcnn", {}, [(8, 8), (32, 32), (12, 20)]),
    ("smallcnn", {"in_channels": 1, "width": 4}, [(8, 8)]),
]


def test_feature_info_has_timms_keys():
    for name in ("wrn-16-1", "gowal-wrn-16-1", "preact-resnet18", "resnet50", "smallcnn"):
        with torch.device("meta"):
            info = build_model(name).feature_info
        assert isinstance(info, list) and info, name
        for f in info:
            assert {"num_chs", "reduction", "module"} <= set(f), (name, f)
            assert isinstance(f["num_chs"], int) and isinstance(f["reduction"], int) and isinstance(f["module"], str)


@pytest.mark.parametrize("name,kw,sizes", SIZES, ids=[f"{c[0]}-{c[1].get('in_channels', 3)}ch" for c in SIZES])
@pytest.mark.parametrize("fp", ["pre", "post"])
def test_feature_info_matches_the_intermediates(name, kw, sizes, fp):
    """num_chs = the block's channel dim, reduction = the spatial downsampling measured on inputs of several sizes."""
    torch.manual_seed(0)
    model = build_model(name, num_classes=7, feature_point=fp, **kw).eval()
    info = model.feature_info
    c_in = kw.get("in_channels", 3)
    for h, w in sizes:
        with torch.no_grad():
            _, feats = model.forward_intermediates(torch.rand(2, c_in, h, w))
        assert len(feats) == len(info)
        assert [f.shape[1] for f in feats] == [i["num_chs"] for i in info], (h, w)
        measured = [(h / f.shape[2], w / f.shape[3]) for f in feats]
        assert measured == [(i["reduction"], i["reduction"]) for i in info], (h, w, measured)


@pytest.mark.parametrize("name,kw,sizes", SIZES, ids=[f"{c[0]}-{c[1].get('in_channels', 3)}ch" for c in SIZES])
def test_feature_info_modules_output_the_features(name, kw, sizes):
    """A forward hook on each ``module`` sees its block's "pre" feature, once per forward pass."""
    torch.manual_seed(0)
    model = build_model(name, num_classes=7, **kw).eval()
    seen: dict[int, list[torch.Tensor]] = {}
    for i, f in enumerate(model.feature_info):
        model.get_submodule(f["module"]).register_forward_hook(
            lambda mod, inp, out, i=i: seen.setdefault(i, []).append(out))
    h, w = sizes[0]
    with torch.no_grad():
        _, feats = model.forward_intermediates(torch.rand(2, kw.get("in_channels", 3), h, w), "pre")
    assert sorted(seen) == list(range(len(feats)))
    for i, f in enumerate(feats):
        assert len(seen[i]) == 1 and torch.equal(seen[i][0], f), (name, model.feature_info[i])


def test_feature_channels_of_reads_feature_info():
    from mixacm.models import feature_channels_of
    for name in ("wrn-34-10", "gowal-wrn-28-10", "preact-resnet18", "resnet50", "smallcnn"):
        with torch.device("meta"):
            info = build_model(name).feature_info
        assert feature_channels_of(name) == tuple(f["num_chs"] for f in info)
    assert feature_channels_of("resnet50") == (64, 256, 512, 1024, 2048)


def test_frozen_teacher_feature_info_names_its_own_modules():
    from mixacm.teachers import FrozenTeacher
    model = build_model("wrn-10-1")
    t = FrozenTeacher(model, feature_point="post")
    assert [f["num_chs"] for f in t.feature_info] == [f["num_chs"] for f in model.feature_info]
    assert [f["reduction"] for f in t.feature_info] == [f["reduction"] for f in model.feature_info]
    assert all(t.get_submodule(f["module"]) is model.get_submodule(g["module"])
               for f, g in zip(t.feature_info, model.feature_info))
    x = torch.rand(2, 3, 32, 32)
    logits, feats = t.forward_intermediates(x)
    want_logits, want = model.forward_intermediates(x, "post")
    assert torch.equal(logits, want_logits) and all(torch.equal(a, b) for a, b in zip(feats, want))


def test_normalisation_inside_model():
    m = build_model("wrn-10-1", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert m.mean.shape == (3, 1, 1) and torch.allclose(m.std, torch.full((3, 1, 1), 0.25))
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(m.normalize(x), (x - 0.5) / 0.25)
    with pytest.raises(ValueError, match="positive"):
        build_model("wrn-10-1", std=(0.0, 1.0, 1.0))


def test_swish_suffix_and_bad_names():
    assert isinstance(build_model("wrn-10-1-swish").act, nn.SiLU)
    assert isinstance(build_model("wrn-10-1").act, nn.ReLU)
    assert isinstance(build_model("gowal-wrn-10-1").relu, nn.SiLU)  # Gowal et al. use Swish
    for bad in ["wrn-17-10", "wrn-28", "resnet18", "wrn-4-1"]:
        with pytest.raises(ValueError) as e:
            build_model(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="valid: wrn-D-W"):
        build_model("vgg16")
    with pytest.raises(ValueError, match="feature_point"):
        build_model("smallcnn", feature_point="middle")
    assert set(MODELS) == {"wrn-D-W", "gowal-wrn-D-W", "preact-resnet18", "resnet50", "smallcnn"}


def test_standard_parameter_counts():
    assert _count("wrn-28-10") == 36_479_194  # Zagoruyko & Komodakis, CIFAR-10
    assert _count("wrn-34-10") == 46_160_474
    assert abs(_count("wrn-16-10") - 17.1e6) < 0.05e6
    assert _count("gowal-wrn-28-10") == _count("wrn-28-10")  # same architecture, other layout
    assert _count("resnet50", 1000) == 25_557_032  # torchvision
    assert _count("preact-resnet18") == 11_172_170  # with final BN (robust-training variant)


# Size ratios of Table 4 and Table 10 (student / teacher trainable parameters, percent, as printed).
RATIOS = [
    ("wrn-28-10", "wrn-16-10", "46.92"), ("wrn-28-10", "wrn-28-5", "25.04"), ("wrn-34-20", "wrn-34-10", "25.01"),
    ("wrn-28-10", "wrn-16-5", "11.76"), ("wrn-28-10", "wrn-10-1", "0.21"), ("wrn-34-20", "wrn-10-1", "0.04"),
    ("wrn-28-10", "wrn-34-20", "505.85"), ("wrn-28-10", "wrn-28-1", "1.01"), ("wrn-28-10", "wrn-22-10", "73.5"),
    ("wrn-28-10", "wrn-22-5", "18.40"), ("wrn-28-10", "wrn-22-1", "0.75"), ("wrn-28-10", "wrn-16-1", "0.48"),
    ("wrn-28-10", "wrn-10-10", "20.38"), ("wrn-28-10", "wrn-10-5", "5.12"), ("wrn-28-10", "wrn-28-10", "100"),
]


@pytest.mark.parametrize("teacher,student,printed", RATIOS)
def test_paper_size_ratios(teacher, student, printed):
    got = 100 * _count(student) / _count(teacher)
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    assert f"{got:.{decimals}f}" == printed, (
        f"{student}/{teacher}: expected {printed}% (paper), got {got:.4f}%, source Table 4/10")


def test_paper_ratio_wrn16_10_over_wrn34_20_is_a_typo():
    # Table 4 prints 9.227% for WRN-16-10 / WRN-34-20; the standard counts give 9.276% (digits swapped?).
    got = 100 * _count("wrn-16-10") / _count("wrn-34-20")
    assert f"{got:.3f}" == "9.276" and f"{got:.3f}" != "9.227"


# ---------------------------------------------------------------- Gowal et al. / RobustBench layout
def _expected_gowal_keys(depth: int, width: int) -> set[str]:
    # written from the DMWideResNet layout (module names), independently of our implementation
    n = (depth - 4) // 6
    ch = [16, 16 * width, 32 * width, 64 * width]
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"init_conv.weight", "logits.weight", "logits.bias"} | {f"batchnorm.{s}" for s in bn}
    for g in range(3):
        for b in range(n):
            p = f"layer.{g}.block.{b}."
            keys |= {p + "conv_0.weight", p + "conv_1.weight"}
            keys |= {p + f"batchnorm_{j}.{s}" for j in (0, 1) for s in bn}
            if b == 0 and ch[g] != ch[g + 1]:
                keys.add(p + "shortcut.weight")
    return keys


@pytest.mark.parametrize("depth,width", [(28, 10), (34, 20), (16, 1)])
def test_gowal_state_dict_keys(depth, width):
    with torch.device("meta"):
        model = build_model(f"gowal-wrn-{depth}-{width}")
    sd = model.state_dict()
    assert set(sd) == _expected_gowal_keys(depth, width)  # mean/std are non-persistent, as in RobustBench
    assert model.mean.shape == (3, 1, 1) and sd["layer.1.block.0.shortcut.weight"].shape[2:] == (1, 1)


def test_gowal_loads_old_checkpoints_with_normalisation():
    src = build_model("gowal-wrn-10-1").state_dict()
    src["mean"] = torch.full((3, 1, 1), 0.25)
    src["std"] = torch.full((3, 1, 1), 0.5)
    model = build_model("gowal-wrn-10-1")
    model.load_state_dict(src, strict=True)
    assert torch.equal(model.mean, src["mean"]) and torch.equal(model.std, src["std"])


def _robustbench_dm_module():
    # RobustBench's architecture file, loaded alone (its package __init__ pulls heavy deps).
    src = os.environ.get("MIXACM_ROBUSTBENCH_SRC")
    if src:
        path = Path(src) / "robustbench" / "model_zoo" / "architectures" / "dm_wide_resnet.py"
    else:
        spec = importlib.util.find_spec("robustbench")
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / "model_zoo" / "architectures" / "dm_wide_resnet.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_rb_dm_wide_resnet", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gowal_matches_robustbench_outputs():
    dm = _robustbench_dm_module()
    if dm is None:
        pytest.skip("robustbench not installed (pip install 'mixacm[robustbench]' or set MIXACM_ROBUSTBENCH_SRC)")
    torch.manual_seed(0)
    ref = dm.DMWideResNet(num_classes=10, depth=16, width=2, activation_fn=dm.Swish).eval()
    for m in ref.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    ours = build_model("gowal-wrn-16-2").eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
