"""The gpu tier's cost plan: every runnable cell is costed, and the cost model keeps the paper's step ratios."""
from __future__ import annotations

import pytest

from verification import costs, specs


def test_every_runnable_cell_is_costed():
    plan = costs.plan_costs(specs.all_specs())
    n_cells = sum(t["cells"] for t in plan["tables"].values())
    assert n_cells == sum(1 for s in specs.all_specs() if not s["blocked"])
    assert all(r["train_gpu_h"] > 0 for r in plan["runs"]) and plan["total_gpu_hours"] > 0
    text = costs.render(plan)
    assert "A100" in text and "total GPU-hours" in text


def test_step_cost_model_matches_the_papers_extra_bp_steps():
    """Table 1 'Extra B.P. Steps': PGD-7 AT costs ~6 natural steps (7 attack steps of 2F plus a training step of 3F);
    MixACM one step plus a teacher forward."""
    from verification.runner import RunSpec

    base = {"model": "wrn-16-1", "dataset": "cifar10", "epochs": 1, "val_n": 0}
    cost = {m: costs.run_cost(RunSpec(m, {**base, "method": m, **extra}, attacks=()))["train"]
            for m, extra in [("natural", {}), ("pgd_at", {}),
                             ("mixacm", {"teacher": "robustbench:Gowal2020Uncovering_28_10_extra"})]}
    assert cost["pgd_at"] / cost["natural"] == pytest.approx(17.0 / 3)  # attack steps at 2F
    f_t = costs.forward_flops("gowal-wrn-28-10", 10, 32)
    assert cost["mixacm"] - cost["natural"] == pytest.approx(f_t * 50000 * 0.98, rel=1e-6)


def test_an_attack_step_costs_a_forward_and_an_input_gradient():
    """An attack needs the input gradient only (2F per step, weights frozen), so PGD-7 AT is 17F per
    training image and TRADES (PGD-10) 27F; evaluation: PGD-k 2kF plus the forward that checks the result, FAB 12F
    per iteration at 10 classes (forward, 10 input gradients, forward)."""
    from verification.runner import RunSpec

    base = {"model": "wrn-16-1", "dataset": "cifar10", "epochs": 1, "val_n": 0}
    f = costs.forward_flops("wrn-16-1", 10, 32)
    n = 50000 * 0.98
    cost = {m: costs.run_cost(RunSpec(m, {**base, "method": m, **extra}, attacks=()))["train"] / (n * f)
            for m, extra in [("natural", {}), ("pgd_at", {}), ("trades", {"attack_steps": 10}), ("fast_at", {})]}
    assert cost == pytest.approx({"natural": 3.0, "pgd_at": 17.0, "trades": 27.0, "fast_at": 5.0})
    assert costs.attack_cost("pgd20", 10) == 41.0 and costs.attack_cost("fgsm", 10) == 3.0
    assert costs.attack_cost("fab", 10) == 100 * 12 and costs.attack_cost("apgd-ce", 10) == 200 + 1


def test_evaluation_is_priced_at_its_own_precision():
    """Training runs in bf16, evaluation in fp32/TF32: on the reference A100 the TF32 rate is half the bf16 one."""
    from verification.plans import gpu_plan

    sel = [s for s in specs.all_specs() if s["id"].startswith("table3:") and not s["blocked"]]
    runs = {r.key: r for r in gpu_plan(sel).runs}
    plan = costs.plan_costs(sel)
    for r in plan["runs"]:
        c = costs.run_cost(runs[r["run"]])
        assert r["train_gpu_h"] == pytest.approx(r["seeds"] * c["train"] / costs.TRAIN_FLOPS / 3600)
        assert r["eval_gpu_h"] == pytest.approx(r["seeds"] * c["eval"] / costs.EVAL_FLOPS / 3600)
    assert costs.EVAL_FLOPS == pytest.approx(costs.TRAIN_FLOPS / 2)


def _measured(tmp_path, train_tflops: float, eval_tflops: float):
    import json
    rows = [{"method": m, "student": "gowal-wrn-34-10", "batch": 128, "achieved_tflops": train_tflops,
             "status": "ok"} for m in ("natural", "mixacm", "pgd_at", "trades", "awp", "free_at")]
    rows.append({"method": "pgd_at", "student": "gowal-wrn-34-10", "batch": 512, "achieved_tflops": 999.0,
                 "status": "ok"})  # not the paper's batch: not used for the plan
    b = {"part": "b", "status": "ok", "gpu": "NVIDIA H200", "rows": rows,
         "eval_rows": [{"kind": "pgd", "batch": 1024, "achieved_tflops": eval_tflops, "status": "ok"}]}
    (tmp_path / "b.json").write_text(json.dumps(b))
    return tmp_path


def test_measured_rates_replace_the_assumed_utilisation(tmp_path):
    rates = costs.load_measured(_measured(tmp_path, 200.0, 50.0))  # a record directory holding b.json
    assert rates["gpu"] == "NVIDIA H200" and rates["train"]["pgd_at"] == pytest.approx(200e12)
    assert rates["eval"] == pytest.approx(50e12) and costs.load_measured(tmp_path / "b.json") == rates
    sel = [s for s in specs.all_specs() if s["id"].startswith("table3:")]
    assumed, measured = costs.plan_costs(sel), costs.plan_costs(sel, measured=rates)
    for a, m in zip(assumed["runs"], measured["runs"]):
        assert m["train_gpu_h"] == pytest.approx(a["train_gpu_h"] * costs.TRAIN_FLOPS / 200e12)
        assert m["eval_gpu_h"] == pytest.approx(a["eval_gpu_h"] * costs.EVAL_FLOPS / 50e12)
    text = costs.render(measured)
    assert "measured on NVIDIA H200" in text and "A100" not in text
    with pytest.raises(ValueError, match="no throughput rows"):
        costs.load_measured(tmp_path / "nothing.json")


def test_plan_option_takes_a_measured_file(tmp_path):
    """`pytest verification/ --gpu --plan --measured FILE` prints GPU-hours from the measured rates."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    _measured(tmp_path, 200.0, 50.0)
    p = subprocess.run([sys.executable, "-m", "pytest", "verification/test_gpu_tier.py", "--gpu", "--plan",
                        "--measured", str(tmp_path / "b.json"), "-k", "table3:", "-q", "-p", "no:cacheprovider"],
                       cwd=root, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert "measured on NVIDIA H200" in p.stdout and "total GPU-hours" in p.stdout, p.stdout[-2000:]
