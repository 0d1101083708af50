"""Smoke tier: the cpu plan's variants build valid trainer configs (no training)."""
from __future__ import annotations

import pytest

from mixacm.config import ConfigError, load_config
from mixacm.train import check_names
from verification.plans import cpu_plan

pytestmark = pytest.mark.smoke


def _configs(plan):
    out = {}
    for r in plan.runs:
        over = {**plan.base, **r.overrides, "seed": 0, "data_root": plan.data_root}
        if r.teacher:
            over["teacher"] = "runs/teacher/seed0/last.pt"
        cfg = load_config(None, over)
        check_names(cfg)
        out[r.key] = cfg
    return out


def test_alpha_at_reference_widths_reaches_every_channel_mean_acm_run_and_no_other():
    plan = cpu_plan("/data/cifar10-jpeg", alpha_acm_reference="wrn-34-10", extra=True)
    cfgs = _configs(plan)
    with_ref = {k for k, c in cfgs.items() if c.alpha_acm_reference == "wrn-34-10"}
    assert {"mixacm", "wo_kd", "wo_mixup", "only_acm", "blocks_2", "teacher_avgpool", "only_acm_a500",
            "mixacm_a500", "mixacm_post"} <= with_ref
    assert not with_ref & {"teacher", "natural", "only_kd", "pgd_at", "direct_l2", "mixacm_sum"}
    assert plan.name == "cpu-cifar10-alpha-at-wrn-34-10" and "wrn-34-10 block widths" in plan.scale
    literal = _configs(cpu_plan("/data/cifar10-jpeg", extra=False))
    assert all(c.alpha_acm_reference is None for c in literal.values())


def test_only_keeps_the_named_runs_their_teacher_and_their_cells():
    plan = cpu_plan("/data/cifar10-jpeg", only=("mixacm", "only_kd"), autoattack_n=0)
    assert [r.key for r in plan.runs] == ["teacher", "mixacm", "only_kd"]
    assert {c.run for c in plan.cells} <= {"teacher", "mixacm", "only_kd"} and plan.cells
    assert plan.acm_profiles == {} and plan.autoattack_runs == ()
    with pytest.raises(ValueError, match="unknown runs \\['mixacm_typo'\\]"):
        cpu_plan("/data/cifar10-jpeg", only=("mixacm_typo",))


def test_reference_with_sum_reduction_is_refused():
    with pytest.raises(ConfigError, match="acm_reduction='mean'"):
        load_config(None, {"method": "mixacm", "acm_reduction": "sum", "alpha_acm_reference": "wrn-34-10"})


def test_table10_students_train_against_the_plans_teacher_with_exact_size_ratios():
    plan = cpu_plan("/data/cifar10-jpeg", alpha_acm_reference="wrn-34-10", autoattack_n=0, table10=("wrn-10-1",),
                    only=("mixacm", "pgd_at", "mixacm_wrn-10-1", "pgd_at_wrn-10-1"))
    cfgs = _configs(plan)
    assert cfgs["mixacm_wrn-10-1"].model == "wrn-10-1" and cfgs["pgd_at_wrn-10-1"].model == "wrn-10-1"
    assert cfgs["mixacm_wrn-10-1"].alpha_acm_reference == "wrn-34-10" and cfgs["pgd_at_wrn-10-1"].method == "pgd_at"
    t10 = {(c.row, c.column): c.run for c in plan.cells if c.table == "table10"}
    assert t10 == {("WRN-16-2 -> WRN-10-1", "Ours / Acc."): "mixacm_wrn-10-1",
                   ("WRN-16-2 -> WRN-10-1", "Ours / Rob."): "mixacm_wrn-10-1",
                   ("WRN-16-2 -> WRN-10-1", "PGD7-AT / Acc."): "pgd_at_wrn-10-1",
                   ("WRN-16-2 -> WRN-10-1", "PGD7-AT / Rob."): "pgd_at_wrn-10-1",
                   ("WRN-16-2 -> WRN-16-1", "Ours / Acc."): "mixacm", ("WRN-16-2 -> WRN-16-1", "Ours / Rob."): "mixacm",
                   ("WRN-16-2 -> WRN-16-1", "PGD7-AT / Acc."): "pgd_at",
                   ("WRN-16-2 -> WRN-16-1", "PGD7-AT / Rob."): "pgd_at"}
    ratios = {r["row"]: r["value"] for r in plan.extra_records if r["column"] == "Size Ratio"}
    from verification.plans import param_ratio
    assert ratios == {"WRN-16-2 -> WRN-10-1": param_ratio({"student": "wrn-10-1", "teacher": "wrn-16-2"}),
                      "WRN-16-2 -> WRN-16-1": param_ratio({"student": "wrn-16-1", "teacher": "wrn-16-2"})}
    assert 10 < ratios["WRN-16-2 -> WRN-10-1"] < ratios["WRN-16-2 -> WRN-16-1"] < 100
    assert not any(c.table == "table10" for c in cpu_plan("/data/cifar10-jpeg").cells)  # opt-in
    with pytest.raises(ValueError, match="table10: 'resnet18' is not a WRN"):
        cpu_plan("/data/cifar10-jpeg", table10=("resnet18",))


@pytest.mark.parametrize("make", ["cpu_tier", "digits", "epoch_scaling"])
def test_every_evaluation_can_run_the_masking_check_and_fig3_runs_match_full_steps(make):
    """Every run is evaluated with FGSM beside PGD (the gradient-masking self-check needs a one-step or black-box
    attack); Only-KD students (temperature-trained, the classic masking case) also get AutoAttack; Fig. 3's runs on a
    fraction of the data train for as many optimiser steps as the full-data run they are compared with."""
    from verification.plans import digits_plan, epoch_scaling_plan

    plan = {"cpu_tier": lambda: cpu_plan("/data/cifar10-jpeg", extra=True),
            "digits": lambda: digits_plan(extra=True),
            "epoch_scaling": lambda: epoch_scaling_plan("/data/cifar10-jpeg")}[make]()
    cfgs = _configs(plan)
    assert all("fgsm" in r.attacks for r in plan.runs), [r.key for r in plan.runs if "fgsm" not in r.attacks]
    if make == "cpu_tier":
        assert "only_kd" in plan.autoattack_runs and plan.eval_n is None  # whole test split by default
    full = {c.run: c for c in plan.cells if c.table == "fig3" and c.row == "pgd7_at"}
    assert full, "no full-data Fig. 3 reference"
    (ref,) = full
    steps_ref = cfgs[ref].data_fraction * cfgs[ref].epochs
    base_fraction = cfgs["mixacm_e3" if make == "epoch_scaling" else "mixacm"].data_fraction
    for c in plan.cells:
        if c.table == "fig3" and c.row == "mixacm":
            cfg = cfgs[c.run]
            assert cfg.data_fraction * cfg.epochs == pytest.approx(base_fraction * cfgs[ref].epochs, rel=0.05), c.run
    assert steps_ref == pytest.approx(base_fraction * cfgs[ref].epochs)
