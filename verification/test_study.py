"""Smoke tier: the epoch-scaling study through the command a user runs (``python -m verification.study``) at toy
size on the real CIFAR-10 JPEG copy, and its analysis (``verification.scaling``)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from verification import scaling
from verification.plans import cifar_jpeg_root

pytestmark = pytest.mark.smoke

TOY = {"epochs": [1, 2], "fraction": 0.05, "teacher_fraction": 0.01, "teacher_epochs": 1, "eval_n": 40,
       "mixacm_seeds": [0, 1], "at_seeds": [0, 1],
       "base_overrides": {"batch_size": 32, "teacher_expected_acc": 0.1, "teacher_gate_tolerance": 0.1, "val_n": 20,
                          "max_steps_per_epoch": 4, "val_attack_steps": 2}}


def test_slope_is_weighted_least_squares():
    xs, ys, ses = [1.0, 2.0, 3.0, 4.0], [-8.0, -6.5, -5.0, -2.0], [1.0, 0.5, 2.0, 1.0]
    fit = scaling.slope(xs, ys, ses)
    ref = np.polyfit(xs, ys, 1, w=[1 / s for s in ses])  # numpy weights multiply residuals: 1/se
    assert fit["slope"] == pytest.approx(ref[0], abs=1e-4)
    assert fit["ci95"][0] < fit["slope"] < fit["ci95"][1]
    assert scaling.slope([1.0], [2.0], [1.0]) is None


def test_study_runs_resumes_and_aggregates_at_toy_size(tmp_path, capsys):
    from verification.study import main

    root = cifar_jpeg_root(None)
    if root is None:
        pytest.skip("no CIFAR-10 JPEG copy beside the checkout")
    out = tmp_path / "study"
    args = ["epoch-scaling", "--out", str(out), "--kwargs", json.dumps(TOY)]
    # two workers' shares, as the study is run: AT runs (no teacher) first, then the rest
    assert main(args + ["--only", "pgd_at_e1,pgd_at_e2"]) == 0
    assert main(args) == 0
    assert "(stored)" in capsys.readouterr().out  # the second call resumed the first one's runs
    results = json.loads((out / "results.json").read_text())["results"]
    accs = [r for r in results if r["table"] in ("epochs", "fig3")]
    assert accs and all(r.get("per_image") and r["setting"]["eval_n"] == 40 for r in accs)
    evals = [json.loads(f.read_text()) for f in (out / "evals").glob("*.json")]
    assert evals and all({c["name"]: c["status"] for c in e["self_checks"]}["no_gradient_masking"] != "skipped"
                         for e in evals)
    s = json.loads((out / "scaling.json").read_text())
    assert s["epochs"] == [1, 2] and s["test"] == "paired on the same test images"
    assert {"clean", "robust"} <= set(s["rows"][0]) and s["slope"]["robust"] is not None
    fig3 = [r for r in results if r["table"] == "fig3"]
    assert {r["setting"]["epochs"] for r in fig3} == {1, 3}  # 30 % of the data for 1 / 0.3 epochs


def test_digits_compared_study_runs_through_the_cli_and_keeps_paired_masks(tmp_path):
    """The compared methods' study needs no CIFAR-10 copy; every record keeps its per-image masks, and every
    evaluation runs the gradient-masking check (FGSM among its attacks)."""
    from verification.plans import digits_compared_plan
    from verification.study import main

    with pytest.raises(ValueError, match="unknown runs"):
        digits_compared_plan(only=("tradez",))
    out = tmp_path / "compared"
    kwargs = {"epochs": 1, "seeds": [0], "eval_n": 40}
    assert main(["digits-compared", "--out", str(out), "--only", "natural,trades", "--kwargs",
                 json.dumps(kwargs)]) == 0
    results = json.loads((out / "results.json").read_text())["results"]
    assert {(r["row"], r["column"]) for r in results} == {
        (row, col) for row in ("Natural", "TRADES (Zhang et al. [94])")
        for col in ("Clean Acc.", "PGD 20", "PGD 100")}
    assert all(r.get("per_image") and r["setting"]["eval_n"] == 40 for r in results)
    assert digits_compared_plan().eval_n is None  # the recorded study: the whole test split
    evals = [json.loads(f.read_text()) for f in (out / "evals").glob("*.json")]
    assert len(evals) == 2 and all(
        {c["name"]: c["status"] for c in e["self_checks"]}["no_gradient_masking"] != "skipped" for e in evals)


def test_a_recorded_plan_json_reruns_its_own_study_only(tmp_path, capsys):
    """``--plan reports/recorded/<set>/plan.json`` takes the arguments a set was recorded with (the file names its
    study); a plan file of another study stops with a one-line error before anything runs."""
    from verification.study import main, plan_kwargs
    f = tmp_path / "plan.json"
    f.write_text(json.dumps({"study": "cpu", "seeds": [0, 1, 2], "only": ["mixacm", "pgd_at"], "extra": True}))
    assert plan_kwargs("cpu", "{}", f) == {"seeds": (0, 1, 2), "only": ("mixacm", "pgd_at"), "extra": True}
    assert plan_kwargs("cpu", '{"extra": false}', f)["extra"] is False  # --kwargs on top of the file
    with pytest.raises(ValueError, match="digits-compared.*cpu"):
        plan_kwargs("digits-compared", "{}", f)
    assert main(["digits-compared", "--out", str(tmp_path / "out"), "--plan", str(f)]) == 2
    assert "plan.json" in capsys.readouterr().err and not (tmp_path / "out").exists()
