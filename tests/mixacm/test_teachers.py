"""Teacher loading (local checkpoints, safetensors, run dirs, config-trained teachers, RobustBench errors) and the
accuracy gate."""
from __future__ import annotations

import sys

import pytest
import torch

from mixacm import data as D
from mixacm.checkpoint import CheckpointError
from mixacm.config import load_config
from mixacm.models import build_model
from mixacm.teachers import (ROBUSTBENCH_TEACHERS, FrozenTeacher, TeacherError, accuracy_gate, clean_accuracy,
                             load_teacher_model)
from mixacm.train import train

TINY = dict(dataset="digits", model="smallcnn", augment="none", data_fraction=0.25, val_fraction=0.2, batch_size=32,
            epochs=2, max_steps_per_epoch=6, val_n=60, progress=False, eval_batch_size=128, lr=0.05)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("teacher") / "run"
    s = train(load_config(None, {**TINY, "method": "natural", "epochs": 4, "max_steps_per_epoch": 10, "lr": 0.1}), run)
    return run, s


@pytest.fixture(scope="module")
def held_out():
    x, y = D.load_split("digits", "test")
    return x[:200], y[:200]


def test_package_checkpoint_and_run_dir(trained):
    run, s = trained
    for spec in (s["checkpoint"], str(run)):
        m, info = load_teacher_model(spec, in_channels=1)
        assert not m.training and info["arch"] == "smallcnn" and info["num_classes"] == 10
        assert info["expected_acc"] == pytest.approx(s["val_acc"])


def test_raw_state_dict_and_safetensors(trained, tmp_path, held_out):
    from safetensors.torch import save_file
    m, _ = load_teacher_model(trained[1]["checkpoint"], in_channels=1)
    sd = m.state_dict()
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}}, tmp_path / "raw.pt")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "t.safetensors"))
    x, _ = held_out
    for f in ("raw.pt", "t.safetensors"):
        m2, info = load_teacher_model(str(tmp_path / f), model_name="smallcnn", in_channels=1)
        assert torch.equal(m(x), m2(x)) and info["expected_acc"] is None
    with pytest.raises(TeacherError, match="teacher_model=NAME"):
        load_teacher_model(str(tmp_path / "raw.pt"), in_channels=1)
    with pytest.raises(CheckpointError, match="does not fit architecture 'wrn-10-1'"):
        load_teacher_model(str(tmp_path / "raw.pt"), model_name="wrn-10-1", in_channels=1)
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="safetensors"):
        load_teacher_model(str(tmp_path / "bad.safetensors"), model_name="smallcnn", in_channels=1)


def test_gate_accepts_trained_and_refuses_random_teacher(trained, held_out):
    x, y = held_out
    good, info = load_teacher_model(trained[1]["checkpoint"], in_channels=1)
    acc = accuracy_gate(good, x, y, expected=info["expected_acc"], tolerance=0.25)
    assert acc == pytest.approx(clean_accuracy(good, x, y)) and acc > 0.5
    torch.manual_seed(0)
    rand = build_model("smallcnn", num_classes=10, in_channels=1).eval()
    with pytest.raises(TeacherError, match=r"far below the expected 90\.0%") as e:
        accuracy_gate(rand, x, y, expected=0.90, tolerance=0.10, name="teacher 'x'")
    assert "\n" not in str(e.value)
    with pytest.raises(TeacherError, match="twice chance"):
        accuracy_gate(rand, x, y, expected=None, num_classes=10)


def test_gate_runs_inside_train(trained, tmp_path):
    cfg = load_config(None, {**TINY, "method": "kd", "epochs": 1, "teacher": trained[1]["checkpoint"],
                             "teacher_expected_acc": 0.999, "teacher_gate_tolerance": 0.0})
    with pytest.raises(TeacherError, match="far below"):
        train(cfg, tmp_path / "r")


def test_config_teacher_is_trained_once_and_reused(tmp_path):
    tcfg = tmp_path / "teacher.toml"
    tcfg.write_text('method = "natural"\nmodel = "smallcnn"\ndataset = "digits"\naugment = "none"\n'
                    'data_fraction = 0.25\nval_fraction = 0.2\nbatch_size = 32\nepochs = 1\nmax_steps_per_epoch = 4\n'
                    'val_n = 40\nprogress = false\n')
    cache = tmp_path / "cache"
    m1, i1 = load_teacher_model(f"config:{tcfg}", in_channels=1, cache_dir=cache)
    (ckpt,) = cache.rglob("last.pt")
    stamp = ckpt.stat().st_mtime_ns
    m2, i2 = load_teacher_model(f"config:{tcfg}", in_channels=1, cache_dir=cache)
    assert ckpt.stat().st_mtime_ns == stamp and i1["source"] == i2["source"]
    with pytest.raises(TeacherError, match="not found"):
        load_teacher_model(f"config:{tmp_path / 'nope.toml'}", in_channels=1)


def test_robustbench_missing_or_unknown(monkeypatch):
    with pytest.raises(TeacherError, match="unknown RobustBench teacher 'Foo'; valid: Gowal2020Uncovering_28_10_extra"):
        load_teacher_model("robustbench:Foo")
    monkeypatch.setitem(sys.modules, "robustbench", None)  # simulate the optional extra not installed
    monkeypatch.setitem(sys.modules, "robustbench.utils", None)
    with pytest.raises(TeacherError, match=r"pip install 'mixacm\[robustbench\]'"):
        load_teacher_model("robustbench:Gowal2020Uncovering_28_10_extra")
    assert set(ROBUSTBENCH_TEACHERS) >= {"Gowal2020Uncovering_28_10_extra", "Gowal2020Uncovering_34_20",
                                         "Salman2020Do_R50"}


def test_robustbench_offline_gives_clear_error(monkeypatch):
    import types
    fake = types.ModuleType("robustbench.utils")

    def load_model(**kw):
        raise ConnectionError("Failed to establish a new connection")

    fake.load_model = load_model
    monkeypatch.setitem(sys.modules, "robustbench", types.ModuleType("robustbench"))
    monkeypatch.setitem(sys.modules, "robustbench.utils", fake)
    with pytest.raises(TeacherError, match="could not download RobustBench teacher.*go online once"):
        load_teacher_model("robustbench:Gowal2020Uncovering_34_20")


def test_frozen_teacher_train_is_noop():
    t = FrozenTeacher(build_model("smallcnn", num_classes=10, in_channels=1))
    t.train(True)
    assert not any(m.training for m in t.modules())
    assert all(not p.requires_grad for p in t.parameters())
