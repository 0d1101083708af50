"""The device check's --smoke run, through the command a user runs on the GPU machine (``python -m
verification.device_check``), at toy size on this CPU: every part (pre, a, b, c) runs every item through the same code
the H200 runs, so that the check's first run on a lent machine is not its first run. Part c reads a pack built here
from a small JPEG tree (``mixacm.data.write_pack``), as ``verification.device_pack`` builds the real one."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mixacm.data import write_pack

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[1]
CUDA_ONLY = ("no CUDA",)  # the reason an item may give for being skipped on a CPU


@pytest.fixture(scope="module")
def pack(tmp_path_factory) -> Path:
    from PIL import Image
    root = tmp_path_factory.mktemp("jpeg")
    rng = np.random.default_rng(0)
    for split, n in (("train", 50), ("test", 4)):  # 50 per class: the 2 % held out for the teacher gate is 1 per class
        for k in range(10):
            (root / split / f"class{k}").mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                    root / split / f"class{k}" / f"{i:04d}.jpg", quality=75)
    return write_pack(root, tmp_path_factory.mktemp("pack") / "cifar10-pack.npz", test_per_class=3)


def test_smoke_runs_every_part_and_item(tmp_path, pack):
    """A generous budget: each part gets its share of it as a deadline, and a part that finishes early hands its time
    on, so the budget bounds a slow machine's run without lengthening a fast one's."""
    out = tmp_path / "check"
    proc = subprocess.run([sys.executable, "-m", "verification.device_check", "--out", str(out), "--budget", "3000",
                           "--smoke", "--pack", str(pack)], cwd=ROOT, capture_output=True, text=True, timeout=3300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["smoke"] and set(summary["parts"]) == {"pre", "a", "b", "c"}
    for name in ("pre", "a", "b", "c"):
        part = json.loads((out / f"{name}.json").read_text())
        assert part["status"] == "ok", (name, part.get("status"))
        assert part["items"], name
        for item in part["items"]:
            ok = item["status"] == "ok" or (item["status"] == "skipped"
                                            and str(item.get("reason", "")).startswith(CUDA_ONLY))
            assert ok, (name, item["name"], item["status"], item.get("reason"), item.get("traceback"))
    b = json.loads((out / "b.json").read_text())
    assert {r["method"] for r in b["rows"]} >= {"natural", "mixacm", "pgd_at", "free_at"}
    assert all(r["images_per_s"] > 0 for r in b["rows"])
    c = json.loads((out / "c.json").read_text())
    mini = next(i for i in c["items"] if i["name"] == "mini_reproduction")
    assert set(mini["evaluations"]) >= {"mixacm-s0", "pgd_at-s0", "natural-s0"}
    assert all(e["n"] == 30 for e in mini["evaluations"].values())  # the pack's 3 test images per class
    assert mini["claims"]  # decided through verification/claims.py
    assert "device check:" in proc.stdout and "part c: ok" in proc.stdout


def test_evaluator_item_fails_on_the_evaluators_own_checks_and_not_on_the_models_properties():
    """The item checks the evaluator on CUDA with cudnn.benchmark on. A flag about the model it evaluates (a natural
    digits model that FGSM breaks more than PGD-5, which differs from one CPU type to another) is evidence about that
    model, recorded but not a failure; an evaluator check that flagged or did not run, or flags left frozen, fail."""
    from verification.device_check import EVALUATOR_CHECKS, evaluator_verdict
    ok = {name: "ok" for name in EVALUATOR_CHECKS} | {"adversarial_valid:fgsm": "ok", "adversarial_valid:pgd5": "ok"}
    assert evaluator_verdict(ok, restored=True) == ("ok", [])
    model = {"no_gradient_masking": "flag", "pgd_monotone_in_steps": "flag", "model_takes_unit_range": "flag",
             "autoattack_flags": "flag"}
    assert evaluator_verdict(ok | model, restored=True) == ("ok", [])
    assert evaluator_verdict(ok | {"deterministic": "flag"}, restored=True) == ("fail", ["deterministic"])
    assert evaluator_verdict(ok | {"adversarial_valid:pgd5": "flag"}, restored=True) == ("fail", ["adversarial_valid:pgd5"])
    assert evaluator_verdict({k: v for k, v in ok.items() if k != "eval_mode"}, restored=True) == ("fail", ["eval_mode"])
    assert evaluator_verdict(ok | {"nonzero_gradients": "skipped"}, restored=True) == ("fail", ["nonzero_gradients"])
    assert evaluator_verdict(ok, restored=False) == ("fail", ["requires_grad_restored"])
