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
    """Table 1 'Extra B.P. Steps': PGD-7 AT costs ~8 natural steps; MixACM one step plus a teacher forward."""
    from verification.experiments import RunSpec

    base = {"model": "wrn-16-1", "dataset": "cifar10", "epochs": 1, "val_n": 0}
    cost = {m: costs.run_cost(RunSpec(m, {**base, "method": m, **extra}, attacks=()))["train"]
            for m, extra in [("natural", {}), ("pgd_at", {}),
                             ("mixacm", {"teacher": "robustbench:Gowal2020Uncovering_28_10_extra"})]}
    assert cost["pgd_at"] / cost["natural"] == pytest.approx(8.0)
    f_t = costs.forward_flops("gowal-wrn-28-10", 10, 32)
    assert cost["mixacm"] - cost["natural"] == pytest.approx(f_t * 50000 * 0.98, rel=1e-6)
