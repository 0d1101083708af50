"""Every RobustBench teacher in ROBUSTBENCH_TEACHERS loads into our architecture and gives RobustBench's own logits,
proven without a download: a RANDOM-weight stand-in (mixacm.robustbench_standin) is written where RobustBench's
load_model expects its download, then loaded both through the trainer's call (load_teacher_model) and through
RobustBench itself. Random BatchNorm statistics make a BN/activation swap in our blocks visible.

Needs the `robustbench` package (declared in the test extra: pip install -e ".[test]"); skipped without it.
"""
from __future__ import annotations

import gc
import sys

import pytest
import torch

from mixacm.models.common import CIFAR10_MEAN
from mixacm.teachers import ROBUSTBENCH_TEACHERS, TeacherError, _robustbench_utils, load_teacher_model

try:
    _robustbench_utils()
    HAVE_RB = True
except TeacherError:
    HAVE_RB = False

pytestmark = pytest.mark.skipif(not HAVE_RB, reason="robustbench not installed (pip install -e '.[test]')")

# Our model and RobustBench's run the same float32 ops in nearly the same order (Swish as x*sigmoid(x) vs SiLU);
# observed max differences are ~1e-6 relative. A genuinely wrong layer (e.g. BN/activation swapped, wrong mean/std)
# changes logits by O(1).
RTOL, ATOL = 1e-4, 1e-4
SIDE = {"cifar10": 32, "cifar100": 32, "imagenet": 224}


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _rb_normalisation(rb: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    norm = getattr(rb, "normalize", rb)  # normalize_model(net) for ImageNet, DMWideResNet's own buffers otherwise
    return norm.mean.flatten(), norm.std.flatten()


@pytest.mark.parametrize("name", list(ROBUSTBENCH_TEACHERS))
def test_teacher_loads_and_matches_robustbench(name, tmp_path):
    from mixacm.robustbench_standin import standin_reference, write_standin_checkpoint

    info = ROBUSTBENCH_TEACHERS[name]
    path = write_standin_checkpoint(name, tmp_path, seed=0)
    assert path == tmp_path / info.dataset / info.threat_model / f"{name}.pt"
    try:
        # the trainer's call: cache_dir is passed to RobustBench as model_dir, so the stand-in is found there
        ours, meta = load_teacher_model(f"robustbench:{name}", num_classes=info.num_classes, in_channels=3,
                                        cache_dir=tmp_path)
        ref = standin_reference(name, tmp_path)
    finally:
        path.unlink()  # up to 1 GB each; do not leave them in pytest's kept tmp dirs
    assert not ours.training and meta["arch"] == info.arch and meta["num_classes"] == info.num_classes
    assert meta["expected_acc"] == info.clean_acc

    # normalisation: the table = RobustBench's model definition = what our model applies
    rb_mean, rb_std = _rb_normalisation(ref)
    torch.testing.assert_close(ours.mean.flatten(), rb_mean, rtol=0, atol=1e-7)
    torch.testing.assert_close(ours.std.flatten(), rb_std, rtol=0, atol=1e-7)
    torch.testing.assert_close(rb_mean, torch.tensor(info.mean), rtol=0, atol=1e-7)
    torch.testing.assert_close(rb_std, torch.tensor(info.std), rtol=0, atol=1e-7)

    side = SIDE[info.dataset]
    x = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = ref(x)
        del ref
        gc.collect()
        got, feats = ours.forward_intermediates(x)
    assert want.shape == (2, info.num_classes)
    assert torch.isfinite(want).all() and want.std() > 0.1  # the stand-in's logits are not degenerate
    torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(ours(x), want, rtol=RTOL, atol=ATOL)
    assert torch.equal(got.argmax(1), want.argmax(1))
    assert [f.shape[1] for f in feats] == [f["num_chs"] for f in ours.feature_info]


def test_table_is_the_registry():
    """Each entry names a RobustBench model of its dataset/threat model, with RobustBench's class count."""
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel
    from robustbench.utils import DATASET_CLASSES

    for name, info in ROBUSTBENCH_TEACHERS.items():
        ds = BenchmarkDataset(info.dataset)
        assert name in model_dicts[ds][ThreatModel(info.threat_model)], name
        assert DATASET_CLASSES[ds] == info.num_classes, name
    # defect 2: a CIFAR-100 teacher with CIFAR-10 statistics
    assert ROBUSTBENCH_TEACHERS["Gowal2020Uncovering_extra"].mean != CIFAR10_MEAN


def test_download_failure_names_the_fix(tmp_path, monkeypatch):
    utils = _robustbench_utils()

    def offline(gdrive_id, fname_save):
        raise ConnectionError("Failed to establish a new connection: [Errno -3] no network")

    monkeypatch.setattr(utils, "download_gdrive_new", offline)
    with pytest.raises(TeacherError) as e:
        load_teacher_model("robustbench:Gowal2020Uncovering_28_10_extra", cache_dir=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "could not download" in msg and "teacher_model=gowal-wrn-28-10" in msg
    assert str(tmp_path / "cifar10" / "Linf" / "Gowal2020Uncovering_28_10_extra.pt") in msg
    # the CIFAR-100 teacher: a raw local checkpoint would get CIFAR-10 statistics, so that is not offered as the fix
    with pytest.raises(TeacherError) as e:
        load_teacher_model("robustbench:Gowal2020Uncovering_extra", num_classes=100, cache_dir=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "cifar100" / "Linf" / "Gowal2020Uncovering_extra.pt") in msg
    assert "not as teacher=PATH" in msg and "teacher_model=" not in msg
    # the ImageNet teacher: RobustBench's file holds bare torchvision keys, which resnet50 (net.*) does not take
    with pytest.raises(TeacherError, match=r"imagenet/Linf/Salman2020Do_R50\.pt.*not as teacher=PATH") as e:
        load_teacher_model("robustbench:Salman2020Do_R50", num_classes=1000, cache_dir=tmp_path)
    assert "\n" not in str(e.value)


def test_unreadable_file_is_not_called_a_download_failure(tmp_path):
    bad = tmp_path / "cifar10" / "Linf" / "Gowal2020Uncovering_28_10_extra.pt"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"<html>quota exceeded</html>")  # what a failed Google Drive download can leave behind
    with pytest.raises(TeacherError, match=r"RobustBench could not load its file .*delete it") as e:
        load_teacher_model("robustbench:Gowal2020Uncovering_28_10_extra", cache_dir=tmp_path)
    assert "\n" not in str(e.value)


def test_wrong_in_channels_is_refused():
    with pytest.raises(TeacherError, match="3 input channels"):
        load_teacher_model("robustbench:Gowal2020Uncovering_28_10_extra", in_channels=1)


def test_autoattack_shim_does_not_hide_a_missing_robustbench(monkeypatch):
    monkeypatch.setitem(sys.modules, "robustbench", None)
    monkeypatch.setitem(sys.modules, "robustbench.utils", None)
    with pytest.raises(TeacherError, match=r"pip install 'mixacm\[robustbench\]'"):
        _robustbench_utils("X")


def test_broken_robustbench_import_names_the_fix(monkeypatch):
    # robustbench present but its `import pkg_resources` failing (setuptools>=81): say so, not "not installed"
    for mod in [m for m in sys.modules if m == "robustbench" or m.startswith("robustbench.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "pkg_resources", None)
    with pytest.raises(TeacherError, match=r"robustbench is installed but its import failed .*pkg_resources.*"
                                           r"setuptools<81") as e:
        _robustbench_utils("Salman2020Do_R50")
    assert "\n" not in str(e.value)


def test_standin_is_seeded_and_a_wrong_table_is_refused(tmp_path, monkeypatch):
    import dataclasses

    from mixacm.robustbench_standin import write_standin_checkpoint

    name = "Gowal2020Uncovering_28_10_extra"
    a = torch.load(write_standin_checkpoint(name, tmp_path / "a", seed=0), weights_only=True)
    b = torch.load(write_standin_checkpoint(name, tmp_path / "b", seed=0), weights_only=True)
    c = torch.load(write_standin_checkpoint(name, tmp_path / "c", seed=1), weights_only=True)
    assert a.keys() == b.keys() == c.keys() and "mean" not in a  # RobustBench's DMWideResNet: mean/std not saved
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["logits.weight"], c["logits.weight"])
    assert not torch.equal(a["batchnorm.running_mean"], torch.zeros_like(a["batchnorm.running_mean"]))
    del a, b, c
    # the loader checks the table against RobustBench's model: a CIFAR-10 teacher stated with CIFAR-100 statistics
    wrong = dataclasses.replace(ROBUSTBENCH_TEACHERS[name], mean=ROBUSTBENCH_TEACHERS["Gowal2020Uncovering_extra"].mean)
    monkeypatch.setitem(ROBUSTBENCH_TEACHERS, name, wrong)
    with pytest.raises(TeacherError, match=r"RobustBench normalises with mean=.*fix the table"):
        load_teacher_model(f"robustbench:{name}", cache_dir=tmp_path / "a")
    for d in "abc":
        (tmp_path / d / "cifar10" / "Linf" / f"{name}.pt").unlink()
