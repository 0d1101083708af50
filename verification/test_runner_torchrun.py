"""The runner's torchrun path (MIXACM_TORCHRUN): a plan's training runs through `torchrun ... mixacm train` with 2 gloo
ranks on CPU (device=cpu: a one-GPU host runs it too), exactly the command the gpu tier launches on a multi-GPU
node."""
from __future__ import annotations

import json

from verification.runner import CellSpec, Plan, RunSpec, run_plan
from verification.plans import DIGITS_BASE


def test_plan_trains_through_torchrun(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXACM_TORCHRUN", "--nproc_per_node=2 --standalone")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    plan = Plan(name="torchrun", tier="smoke", base={**DIGITS_BASE, "epochs": 1, "device": "cpu"}, seeds=(0,), eval_n=100,
                runs=[RunSpec("natural", {"method": "natural", "model": "wrn-10-1"}, attacks=())],
                cells=[CellSpec("table3", "CIFAR-10 / Natural", "Acc.", "natural", "clean")], scale="torchrun test")
    results = run_plan(plan, tmp_path)
    summary = json.loads((tmp_path / "runs" / "natural" / "seed0" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["batch_size_per_rank"] == DIGITS_BASE["batch_size"] // 2
    (rec,) = results["results"]
    assert rec["value"] > 50.0, rec  # one epoch of natural training on digits: well above chance (10 %)
