"""Teacher loading (local checkpoints, safetensors, run dirs, config-trained teachers, RobustBench errors) and the
accuracy gate."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from mixacm import data as D
from mixacm.checkpoint import CheckpointError
from mixacm.config import load_config
from mixacm.models import build_model
from mixacm.teachers import (ROBUSTBENCH_TEACHERS, FrozenTeacher, TeacherError, accuracy_gate, clean_accuracy,
                             config_teacher, load_teacher_model)
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


TEACHER_TOML = ('method = "natural"\nmodel = "smallcnn"\ndataset = "digits"\naugment = "none"\n'
                'data_fraction = 0.25\nval_fraction = 0.2\nbatch_size = 32\nepochs = 2\nmax_steps_per_epoch = 4\n'
                'val_n = 40\nprogress = false\n')


def test_config_teacher_is_trained_once_by_the_trainer_and_reused(tmp_path, monkeypatch, capsys):
    import mixacm.train as TR
    tcfg = tmp_path / "teacher.toml"
    tcfg.write_text(TEACHER_TOML)
    cache, spec = tmp_path / "cache", f"config:{tcfg}"
    where = config_teacher(spec, cache)
    assert where.run_dir.parent == cache and where.run_dir.name.startswith("teacher-")
    assert not where.finished and not where.interrupted
    with pytest.raises(TeacherError, match=r"has not been trained into .* yet; mixacm train trains it") as e:
        load_teacher_model(spec, in_channels=1, cache_dir=cache)  # this module loads; the trainer trains
    assert "\n" not in str(e.value)
    student = load_config(None, {**TINY, "method": "kd", "epochs": 1, "teacher": spec, "teacher_cache": str(cache),
                                 "teacher_expected_acc": 0.0})

    real_save = TR.save_checkpoint

    def crash_after_first_teacher_epoch(payload, path):
        real_save(payload, path)
        if path.parent == where.run_dir and path.name == "last.pt" and payload["epoch"] == 1:
            raise KeyboardInterrupt("simulated crash in the teacher's training")

    monkeypatch.setattr(TR, "save_checkpoint", crash_after_first_teacher_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(student, tmp_path / "s0")
    monkeypatch.setattr(TR, "save_checkpoint", real_save)
    assert where.interrupted and not where.finished
    capsys.readouterr()

    s1 = train(student, tmp_path / "s1")  # resumes the interrupted teacher, then trains the student
    assert where.finished and capsys.readouterr().err.count("mixacm: training the teacher of") == 1
    assert [json.loads(x)["epoch"] for x in (where.run_dir / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert json.loads((where.run_dir / "meta.json").read_text())["resumes"][0]["from_epoch"] == 1
    stamp = (where.run_dir / "last.pt").stat().st_mtime_ns
    s2 = train(student, tmp_path / "s2")  # reuses it
    assert "training the teacher" not in capsys.readouterr().err
    assert (where.run_dir / "last.pt").stat().st_mtime_ns == stamp
    assert s1["teacher"]["source"] == s2["teacher"]["source"] == str(where.run_dir / "best.pt")
    _, info = load_teacher_model(spec, in_channels=1, cache_dir=cache)
    assert info["source"] == s1["teacher"]["source"]
    with pytest.raises(TeacherError, match="not found"):
        load_teacher_model(f"config:{tmp_path / 'nope.toml'}", in_channels=1)


def test_teachers_does_not_import_the_trainer():
    """The trainer trains config: teachers and loads them through this module, never the other way round."""
    import ast

    import mixacm.teachers as T
    tree = ast.parse(Path(T.__file__).read_text())
    imported = []
    for node in ast.walk(tree):  # module level and inside functions
        if isinstance(node, ast.Import):
            imported += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ("mixacm." * (node.level > 0)) + (node.module or "")
            imported += [base.rstrip(".")] + [f"{base}.{a.name}".replace("..", ".") for a in node.names]
    assert imported and "mixacm.checkpoint" in imported
    assert not [m for m in imported if m == "mixacm.train" or m.startswith("mixacm.train.")], imported


def test_loading_a_trained_config_teacher_imports_no_trainer(tmp_path):
    """In a fresh interpreter: find, load and gate a finished config: teacher without mixacm.train."""
    import subprocess
    tcfg = tmp_path / "teacher.toml"
    tcfg.write_text(TEACHER_TOML)
    where = config_teacher(f"config:{tcfg}", tmp_path / "cache")
    train(where.cfg, where.run_dir)
    code = (f"import sys; from mixacm.teachers import load_teacher_model; "
            f"m, i = load_teacher_model('config:{tcfg}', in_channels=1, cache_dir={str(tmp_path / 'cache')!r}); "
            f"assert i['arch'] == 'smallcnn', i; assert 'mixacm.train' not in sys.modules; print('ok')")
    root = Path(__file__).resolve().parents[2]
    p = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-2000:]


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
