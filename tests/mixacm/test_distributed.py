"""DDP through torchrun (2 CPU ranks, gloo; ``device = "cpu"``, so that a one-GPU host runs them too) with the real entry point ``python -m mixacm.cli train``, compared with
one process at the same GLOBAL batch: steps per epoch, identical learned weights on every rank (student AND the
learned distillation modules), accuracy, one best-epoch decision, the rank-0-first teacher, bad global batch."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from mixacm.batches import InMemoryBatches, per_rank_batch
from mixacm.train import load_checkpoint_model, main

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="needs gloo")

TEACHER = """method = "natural"
model = "wrn-10-2"
dataset = "digits"
augment = "none"
epochs = 3
batch_size = 64
lr = 0.05
val_fraction = 0.15
val_n = 270
progress = false
num_threads = 1
device = "cpu"
"""
# MixACM with learned affine maps (Table 9): distillation modules that DDP must keep in sync
STUDENT = """method = "mixacm"
model = "wrn-10-1"
dataset = "digits"
teacher = "config:teacher.toml"
transform = "teacher_affine"
alpha_acm = 500.0
augment = "none"
epochs = 8
batch_size = 64
lr = 0.05
val_fraction = 0.15
val_n = 270
progress = false
num_threads = 1
log_every = 5
device = "cpu"
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]), MIXACM_DEBUG_RANK_STATE="1",
               OMP_NUM_THREADS="1")
    return env


def _train(cwd: Path, run: str, *sets: str, ranks: int) -> subprocess.CompletedProcess:
    launch = ([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={ranks}", "--standalone"]
              if ranks > 1 else [sys.executable])
    args = [*launch, "-m", "mixacm.cli", "train", "student.toml", "--run-dir", f"runs/{run}"]
    for s in sets:
        args += ["--set", s]
    p = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("ddp")
    (d / "teacher.toml").write_text(TEACHER)
    (d / "student.toml").write_text(STUDENT)
    _train(d, "ddp", ranks=2)  # first: rank 0 trains the config: teacher while rank 1 waits
    _train(d, "single", ranks=1)  # reuses the cached teacher
    # Table 8 "direct" feature loss across widths (1x1 adapters) on blocks 2,3 only (unused adapters)
    _train(d, "direct", "feature_loss=direct", "alpha_acm=1.0", "blocks=[2,3]", "epochs=2", ranks=2)
    return d / "runs"


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def _rank_states(run: Path) -> list[dict]:
    return [torch.load(run / f"rank{r}_state.pt", weights_only=True) for r in range(2)]


def test_same_optimiser_steps_as_one_process_with_the_global_batch(runs):
    ddp, one = _summary(runs / "ddp"), _summary(runs / "single")
    assert ddp["world_size"] == 2 and one["world_size"] == 1
    assert ddp["batch_size_per_rank"] == 32 and one["batch_size_per_rank"] == 64
    assert ddp["steps_per_epoch"] == one["steps_per_epoch"] == ddp["n_train"] // 64
    assert ddp["global_step"] == one["global_step"] == 8 * one["steps_per_epoch"]


@pytest.mark.parametrize("run,distill_kind", [("ddp", "affine"), ("direct", "adapters")])
def test_every_learned_parameter_is_identical_on_all_ranks(runs, run, distill_kind):
    r0, r1 = _rank_states(runs / run)
    params = {k for k, _ in load_checkpoint_model(runs / run / "last.pt").named_parameters()}
    assert params and params <= set(r0["model_state"])
    for k in params:
        assert torch.equal(r0["model_state"][k], r1["model_state"][k]), f"student {k} differs across ranks"
    assert any(k.startswith(distill_kind) for k in r0["distill_state"]), r0["distill_state"].keys()
    for k, v in r0["distill_state"].items():
        assert torch.equal(v, r1["distill_state"][k]), f"distillation module {k} differs across ranks"
    ck = torch.load(runs / run / "last.pt", weights_only=True)  # rank 0 saved its own (= everyone's) weights
    for part in ("model_state", "distill_state"):
        for k, v in r0[part].items():
            assert torch.equal(v, ck[part][k]), f"{part}.{k} in last.pt is not rank 0's"


def test_accuracy_close_to_one_process(runs):
    ddp, one = _summary(runs / "ddp"), _summary(runs / "single")
    assert ddp["val_acc"] > 0.8 and one["val_acc"] > 0.8, (ddp["val_acc"], one["val_acc"])
    assert abs(ddp["val_acc"] - one["val_acc"]) < 0.08, (ddp["val_acc"], one["val_acc"])


def test_best_epoch_decided_once_and_shared(runs):
    run = runs / "ddp"
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == list(range(1, 9))  # one writer
    vals = [m["val_acc"] for m in lines]
    best_epoch = max(range(8), key=lambda i: (vals[i], -i)) + 1
    s = _summary(run)
    assert s["selected_epoch"] == best_epoch
    r0, r1 = _rank_states(run)
    assert r0["best"] == r1["best"] == {"value": vals[best_epoch - 1], "epoch": best_epoch}
    assert torch.load(run / "best.pt", weights_only=True)["epoch"] == best_epoch


def test_config_teacher_trained_once_single_process(runs):
    (teacher,) = list((runs / "_teachers").iterdir())
    meta = json.loads((teacher / "meta.json").read_text())
    assert meta["world_size"] == 1
    assert _summary(runs / "ddp")["teacher"]["source"] == _summary(runs / "single")["teacher"]["source"]


def test_global_batch_not_divisible_by_world_size(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('method = "natural"\nmodel = "smallcnn"\ndataset = "digits"\nbatch_size = 63\nepochs = 1\n'
                   'progress = false\n')
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it; the check runs before any process group exists
    assert main([str(cfg), "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "batch_size=63" in err and "not divisible by the world size 2" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()
    assert main([str(cfg), "--set", "batch_size=64", "--set", "sync_bn=true", "--set", "device=cpu",
                 "--run-dir", str(tmp_path / "r")]) == 2
    assert "sync_bn=true needs CUDA" in capsys.readouterr().err
    with pytest.raises(ValueError):
        per_rank_batch(10, 4)


def test_in_memory_rank_shards_partition_the_global_batch():
    x, y = torch.rand(50, 1, 4, 4), torch.arange(50)
    one = InMemoryBatches(x, y, global_batch=10, generator=torch.Generator().manual_seed(3))
    shards = [InMemoryBatches(x, y, global_batch=10, rank=r, world=2, generator=torch.Generator().manual_seed(3))
              for r in range(2)]
    assert one.steps_per_epoch == shards[0].steps_per_epoch == 5
    for (_, y1), (_, ya), (_, yb) in zip(one.epoch(0), shards[0].epoch(0), shards[1].epoch(0)):
        assert len(ya) == len(yb) == 5
        assert sorted(torch.cat([ya, yb]).tolist()) == sorted(y1.tolist())


def test_teacher_error_on_rank0_stops_every_rank(tmp_path):
    (tmp_path / "student.toml").write_text(STUDENT.replace('"config:teacher.toml"', '"/no/such/teacher.pt"'))
    args = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", "-m", "mixacm.cli",
            "train", "student.toml", "--run-dir", "runs/x"]
    p = subprocess.run(args, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=180)  # no hang
    assert p.returncode != 0
    # both ranks share one stderr pipe with torchrun's and gloo's own logging, whose partial lines can precede ours
    # on the same line: count the messages, not the lines that start with them
    assert p.stderr.count("mixacm train: error:") == 2, p.stderr[-3000:]
    assert "mixacm train: error: rank 0 failed: teacher '/no/such/teacher.pt'" in p.stderr, p.stderr[-3000:]
    assert "mixacm/train.py" not in p.stderr, p.stderr[-3000:]  # torchrun's own traceback only, none from ours
    # rank 0 exits 2; rank 1 exits 2 too, unless torchrun's SIGTERM (sent once rank 0 has failed) reaches it first
    assert "exitcode  : 2" in p.stderr and p.stderr.count("exitcode  : ") == 2, p.stderr[-3000:]
    assert set(re.findall(r"exitcode  : (-?\d+)", p.stderr)) <= {"2", "-15"}, p.stderr[-3000:]
