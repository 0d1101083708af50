"""Training engine: run dir contents, bit-exact resume, divergence and disk-full handling, selection on the
validation split, load_checkpoint_model, CLI errors for bad input."""
from __future__ import annotations

import errno
import json

import pytest
import torch

import mixacm.train as TR
from mixacm import checkpoint as C
from mixacm.config import ConfigError, load_config
from mixacm.train import DivergenceError, load_checkpoint_model, main, train

TINY = dict(dataset="digits", model="smallcnn", augment="crop_flip", data_fraction=0.25, val_fraction=0.2,
            batch_size=32, epochs=2, max_steps_per_epoch=3, val_n=40, progress=False, eval_batch_size=128, lr=0.05,
            eps=0.1, attack_step=0.05, attack_steps=2, teacher_expected_acc=0.0)


def tiny(**kw):
    return load_config(None, {**TINY, **kw})


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    torch.set_num_threads(1)
    return train(tiny(method="natural", max_steps_per_epoch=5), tmp_path_factory.mktemp("t") / "run")["checkpoint"]


def test_run_dir_contents_and_summary(tmp_path):
    s = train(tiny(method="natural"), tmp_path / "r")
    r = tmp_path / "r"
    for name in ("config.json", "meta.json", "metrics.jsonl", "last.pt", "summary.json"):
        assert (r / name).is_file(), name
    meta = json.loads((r / "meta.json").read_text())
    assert meta["seed"] == 0 and "commit" in meta["git"] and meta["machine"]["torch"] == torch.__version__
    assert json.loads((r / "config.json").read_text())["model"] == "smallcnn"
    for key in ("checkpoint", "final_checkpoint", "best_checkpoint", "val_acc", "selected_epoch", "train_time_s",
                "step_time_s", "num_params", "n_train", "n_val", "config"):
        assert key in s, key
    assert json.loads((r / "summary.json").read_text())["checkpoint"] == s["checkpoint"]


def test_selection_uses_validation_never_test(tmp_path, monkeypatch):
    import mixacm.data as D
    real = D.load_split

    def no_test(name, split, *a, **k):
        assert split != "test", "training must never read the test split"
        return real(name, split, *a, **k)

    monkeypatch.setattr(D, "load_split", no_test)
    s = train(tiny(method="natural", epochs=3), tmp_path / "r")
    vals = [json.loads(x)["val_acc"] for x in open(s["metrics"])]
    best_epoch = max(range(3), key=lambda i: (vals[i], -i)) + 1  # first epoch reaching the max
    assert s["selected_epoch"] == best_epoch and s["val_acc"] == vals[best_epoch - 1]
    assert C.load_checkpoint(s["checkpoint"])["epoch"] == best_epoch


@pytest.mark.parametrize("method", ["mixacm", "pgd_at"])
def test_resume_is_bit_exact(method, teacher_ckpt, tmp_path, monkeypatch):
    cfg = tiny(method=method, teacher=teacher_ckpt)
    train(cfg, tmp_path / "straight")

    real_save = TR.save_checkpoint
    calls = []

    def crash_after_first_epoch(payload, path):
        out = real_save(payload, path)
        if path.name == "last.pt":
            calls.append(payload["epoch"])
            if payload["epoch"] == 1:
                raise KeyboardInterrupt("simulated crash after epoch 1")
        return out

    monkeypatch.setattr(TR, "save_checkpoint", crash_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "resumed")
    monkeypatch.setattr(TR, "save_checkpoint", real_save)
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, tmp_path / "resumed")  # refuses to overwrite silently
    train(cfg, tmp_path / "resumed", resume=True)
    a = C.load_checkpoint(tmp_path / "straight" / "last.pt")
    b = C.load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert a["epoch"] == b["epoch"] == 2
    for k, v in a["model_state"].items():
        assert torch.equal(v, b["model_state"][k]), f"{k} differs after resume"
    assert torch.equal(a["rng"]["generator"], b["rng"]["generator"])
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]


def test_nan_loss_stops_names_term_and_keeps_last_good_checkpoint(teacher_ckpt, tmp_path, monkeypatch):
    import mixacm.losses as L
    real = L.acm_loss
    n = {"calls": 0}

    def acm_then_nan(*a, **k):
        n["calls"] += 1
        out = real(*a, **k)
        return out * float("nan") if n["calls"] > 4 else out  # epoch 1 has 3 steps; diverge in epoch 2

    monkeypatch.setattr(L, "acm_loss", acm_then_nan)
    run = tmp_path / "r"
    with pytest.raises(DivergenceError, match=r"loss term 'acm' became nan at epoch 2.*last good checkpoint") as e:
        train(tiny(method="mixacm", teacher=teacher_ckpt), run)
    assert "\n" not in str(e.value)
    ck = C.load_checkpoint(run / "last.pt")
    assert ck["epoch"] == 1 and all(torch.isfinite(v).all() for v in ck["model_state"].values()
                                    if v.is_floating_point())


def test_disk_full_during_training_keeps_previous_checkpoint(tmp_path, monkeypatch):
    real = C._write
    n = {"calls": 0}

    def full_on_epoch2(f, payload):
        n["calls"] += 1
        if payload.get("epoch") == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(f, payload)

    monkeypatch.setattr(C, "_write", full_on_epoch2)
    run = tmp_path / "r"
    with pytest.raises(C.CheckpointError, match="disk full.*previous checkpoint kept"):
        train(tiny(method="natural", select_metric="last"), run)
    assert C.load_checkpoint(run / "last.pt")["epoch"] == 1
    assert sorted(p.name for p in run.glob("*.pt")) == ["last.pt"]


def test_load_checkpoint_model_rebuilds_architecture(tmp_path):
    s = train(tiny(method="natural", model="wrn-10-1"), tmp_path / "r")
    m = load_checkpoint_model(s["checkpoint"])
    assert not m.training and type(m).__name__ == "WideResNet"
    m2 = load_checkpoint_model(tmp_path / "r")  # a run dir works too
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(m(x), m2(x))


def test_resume_with_another_architecture_is_refused(tmp_path):
    train(tiny(method="natural", epochs=1), tmp_path / "r")
    with pytest.raises(ConfigError, match="differs from the recorded one in .*model: 'smallcnn' -> 'wrn-10-1'"):
        train(tiny(method="natural", model="wrn-10-1"), tmp_path / "r", resume=True)


@pytest.mark.parametrize("override,match", [
    ({"model": "resnet-7"}, r"unknown model 'resnet-7'; valid: .*wrn"),
    ({"dataset": "mnist"}, r"unknown dataset 'mnist'; valid: .*digits"),
    ({"method": "tradez"}, r"unknown method 'tradez'; valid: .*mixacm"),
    ({"dataset": "imagefolder:/nonexistent/data"}, r"not found|does not exist"),
    ({"data_root": "/nonexistent/data"}, r"data_root '/nonexistent/data' does not exist"),
    ({"method": "mixacm"}, r"needs a teacher"),
    ({"method": "mixacm", "teacher": "robustbench:NoSuchModel"}, r"unknown RobustBench teacher.*Gowal2020"),
    ({"method": "mixacm", "teacher": "/no/such/teacher.pt"}, r"neither an existing path.*robustbench:NAME"),
])
def test_bad_input_gives_one_line_error(override, match, tmp_path):
    from mixacm.teachers import TeacherError
    with pytest.raises((ConfigError, TeacherError, FileNotFoundError)) as e:
        train(tiny(**override), tmp_path / "r")
    assert e.match(match) and "\n" not in str(e.value)


def test_cli(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('method = "natural"\nmodel = "smallcnn"\ndataset = "digits"\naugment = "none"\n'
                   'data_fraction = 0.25\nbatch_size = 32\nepochs = 1\nmax_steps_per_epoch = 2\nval_n = 20\n'
                   'progress = false\n')
    assert main([str(cfg), "--set", "eps=8", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "did you mean 8/255?" in err and err.count("\n") == 1
    assert main([str(cfg), "--set", "lr=0.01", "--run-dir", str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "config.json").read_text())["lr"] == 0.01
    capsys.readouterr()
    # the run has finished: --resume refuses to extend it silently, --extend trains on
    assert main([str(cfg), "--set", "lr=0.01", "--set", "epochs=2", "--run-dir", str(tmp_path / "r"), "--resume"]) == 2
    assert "--extend" in capsys.readouterr().err
    assert main([str(cfg), "--set", "lr=0.01", "--set", "epochs=2", "--run-dir", str(tmp_path / "r"), "--extend"]) == 0
    assert C.load_checkpoint(tmp_path / "r" / "last.pt")["epoch"] == 2


def test_divergence_found_on_read_names_the_exact_step(teacher_ckpt, tmp_path, monkeypatch):
    # terms stay on the device and are read every log_every steps / at epoch end; the message still names the step
    import mixacm.losses as L
    real = L.acm_loss
    n = {"calls": 0}

    def nan_from_call_5(*a, **k):
        n["calls"] += 1
        out = real(*a, **k)
        return out * float("nan") if n["calls"] >= 5 else out

    monkeypatch.setattr(L, "acm_loss", nan_from_call_5)
    with pytest.raises(DivergenceError, match=r"loss term 'acm' became nan at epoch 2 step 2; "):
        train(tiny(method="mixacm", teacher=teacher_ckpt, log_every=50), tmp_path / "r")


def test_speed_flags(monkeypatch):
    import torch.backends.cudnn as cudnn
    was = torch.are_deterministic_algorithms_enabled()
    try:
        TR._seed_everything(0, deterministic=False, cudnn_benchmark=True)
        assert cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()
        TR._seed_everything(0, deterministic=True, cudnn_benchmark=True)
        assert not cudnn.benchmark and cudnn.deterministic and torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(was, warn_only=True)
    cfg = tiny()
    assert (cfg.cudnn_benchmark, cfg.deterministic, cfg.compile, cfg.sync_bn) == (True, True, False, False)


def test_channels_last_applies_on_cpu_and_changes_no_result(teacher_ckpt, tmp_path):
    """channels_last (the default) is the CPU layout too (1.1-1.3x per step: verification/benchmarks/
    test_bench_train_step.py): the student is trained in NHWC, the run says which layout it used, and the weights
    match a contiguous run of the same seed to float tolerance."""
    runs = {}
    for cl in (True, False):
        s = train(tiny(method="mixacm", teacher=teacher_ckpt, channels_last=cl), tmp_path / str(cl))
        runs[cl] = (s, C.load_checkpoint(s["final_checkpoint"])["model_state"])
    assert runs[True][0]["memory_format"] == "channels_last" and runs[False][0]["memory_format"] == "contiguous"
    conv = next(k for k, v in runs[True][1].items() if v.dim() == 4 and v.shape[1] > 1 and v.shape[2] > 1)
    assert runs[True][1][conv].is_contiguous(memory_format=torch.channels_last)
    assert not runs[True][1][conv].is_contiguous() and runs[False][1][conv].is_contiguous()
    for k, v in runs[False][1].items():  # other conv kernels round differently (seen: 2e-5 after 6 steps)
        torch.testing.assert_close(runs[True][1][k], v, rtol=1e-3, atol=1e-4, msg=lambda m: f"{k}: {m}")
