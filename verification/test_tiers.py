"""The tiers outside pytest (``python -m verification.tiers``): the gpu tier's selection by table runs through the
same ``run_gpu_tier`` as the pytest wrapper (rehearsed here on one small table), the cpu tier's plan carries the
recorded set's arguments, and the errors name what to do."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from verification import tiers

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "verification.tiers", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


def test_gpu_tier_rehearsed_from_the_shell_on_one_table(tmp_path):
    p = _run("gpu", "--rehearse", "--tables", "table5", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "gpu tier REHEARSAL" in p.stdout
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["results"] and {r["table"] for r in results["results"]} == {"table5"}


def test_unknown_table_and_missing_cuda_are_one_line_errors(tmp_path):
    p = _run("gpu", "--rehearse", "--tables", "table99", "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert p.returncode == 2 and "no runnable cell in ['table99']" in p.stderr
    import torch
    if not torch.cuda.is_available():
        p = _run("gpu", "--tables", "table5", "--out", str(tmp_path / "o2"), cwd=tmp_path)
        assert p.returncode == 2 and "CUDA is not available" in p.stderr and "--rehearse" in p.stderr


def test_cpu_tier_plan_uses_the_recorded_sets_arguments(tmp_path):
    recorded = json.loads((tiers.RECORDED_CPU / "plan.json").read_text())
    plan = tiers.cpu_tier_plan(tmp_path)
    assert plan.seeds == tuple(recorded["seeds"])
    assert plan.autoattack_n == recorded["autoattack_n"]


@pytest.mark.parametrize("argv", [["cpu", "--out", "x", "--data-dir", "/nonexistent/cifar"]])
def test_cpu_tier_without_data_says_where_to_point(argv, tmp_path, monkeypatch):
    monkeypatch.delenv("MIXACM_CIFAR10_JPEG", raising=False)
    p = _run(*argv, cwd=tmp_path)
    assert p.returncode == 2 and "MIXACM_CIFAR10_JPEG" in p.stderr
