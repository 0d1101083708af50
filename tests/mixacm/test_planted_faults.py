"""Faults that once passed every default test, each pinned by a test that fails when the fault is planted alone:
TRADES's beta ignored in the training step, FAT's tau ignored (full PGD), the cost plan's GPU-hours not multiplied by
the number of seeds, the evaluator's PGD without its random start."""
from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from mixacm.config import TrainConfig
from mixacm.methods import METHODS
from mixacm.models import build_model
from mixacm.steps import StepContext, WithFeatures


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


class _Inputs(nn.Module):
    """The student, keeping the inputs of its forwards."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.seen: list[tuple[Tensor, bool]] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append((x.detach().clone(), x.requires_grad))
        return self.inner(x)


def _step(method: str, x: Tensor, y: Tensor, **cfg):
    torch.manual_seed(0)
    student = _Inputs(build_model("wrn-10-1", num_classes=10)).train()
    c = TrainConfig(method=method, model="wrn-10-1", **cfg)
    ctx = StepContext(cfg=c, student=WithFeatures(student), student_module=student,
                      generator=torch.Generator().manual_seed(0))
    return METHODS[method](ctx, x, y), student


def _batch(n: int = 8) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 3, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_trades_step_weighs_its_kl_by_beta():
    """TRADES eq. (5): the training loss is CE + beta KL, so the loss at beta = 6 exceeds the loss at beta = 0 (same
    attack: the attack does not depend on beta) by 6 KL."""
    x, y = _batch()
    out6, _ = _step("trades", x, y, trades_beta=6.0, attack_steps=2)
    out0, _ = _step("trades", x, y, trades_beta=0.0, attack_steps=2)
    kl = out6.terms["kl"]
    assert kl > 1e-4 and torch.equal(out6.terms["ce"], out0.terms["ce"])
    assert (out6.loss - out0.loss).item() == pytest.approx(6.0 * kl.item(), abs=2e-6)  # float32 losses near 2.3
    assert out0.loss.item() == pytest.approx(out0.terms["ce"].item(), rel=1e-6)


def test_fat_step_stops_points_misclassified_from_the_start():
    """FAT with tau = 0: a point misclassified at the start is never stepped, so the training input stays at the
    start x + 0.001 N(0, I); with tau ignored (full PGD) it would move by up to eps."""
    torch.manual_seed(0)
    x, _ = _batch()
    with torch.no_grad():
        pred = build_model("wrn-10-1", num_classes=10).eval()(x).argmax(1)
    wrong = (pred + 1) % 10  # every point misclassified
    eps = 8 / 255
    out, student = _step("fat", x, wrong, fat_tau=0, attack_steps=10, eps=eps, attack_step=2 / 255)
    x_train = [inp for inp, req in student.seen if not req and student.training and not torch.equal(inp, x)][-1]
    assert (x_train - x).abs().max() < 0.01  # only the N(0, 0.001^2) start
    full, student = _step("fat", x, wrong, fat_tau=20, attack_steps=10, eps=eps, attack_step=2 / 255)
    x_full = [inp for inp, req in student.seen if not req and student.training and not torch.equal(inp, x)][-1]
    assert (x_full - x).abs().max() > 0.9 * eps  # the same attack without early stopping moves


def test_cost_plan_gpu_hours_count_every_seed():
    """One training group with 3 seeds costs 3 times the same group with 1 seed: per run, per table and in total."""
    from verification import costs, specs

    spec = next(s for s in specs.all_specs() if s["table"] == "table1" and s["row"].startswith("TRADES")
                and not s["blocked"])
    one = costs.plan_costs([{**spec, "seeds": [0]}])
    three = costs.plan_costs([{**spec, "seeds": [0, 1, 2]}])
    assert three["total_gpu_hours"] == pytest.approx(3 * one["total_gpu_hours"], rel=1e-9)
    assert three["tables"]["table1"]["gpu_hours"] == pytest.approx(3 * one["tables"]["table1"]["gpu_hours"], rel=1e-9)
    assert three["tables"]["table1"]["runs"] == 3 * one["tables"]["table1"]["runs"] == 3
    (r1,), (r3,) = one["runs"], three["runs"]
    assert r3["seeds"] == 3
    assert r3["train_gpu_h"] == pytest.approx(3 * r1["train_gpu_h"], rel=1e-9)
    assert r3["eval_gpu_h"] == pytest.approx(3 * r1["eval_gpu_h"], rel=1e-9)
    # and the single-seed figure is the run's own FLOPs at the stated rate
    from verification.runner import RunSpec
    run = RunSpec("r", spec["train"], attacks=tuple(spec["eval"]["attacks"]))
    c = costs.run_cost(run)
    assert r1["train_gpu_h"] == pytest.approx(c["train"] / costs.EFFECTIVE_FLOPS / 3600, rel=1e-9)


class _AttackInputs(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.attacked: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        if x.requires_grad:  # a forward the attack differentiates
            self.attacked.append(x.detach().clone())
        return self.inner(x)


def test_evaluator_pgd_starts_at_a_random_point_in_the_ball():
    """PGD-20 of the evaluator (Madry et al.: a uniform random start in the eps-ball). Its first forward away from the
    clean input is at the start, spread over the ball: mean |offset| near eps / 2 and off the lattice of multiples of
    the step size that signed steps from the clean input would put it on (pixels away from 0 and 1: no clipping)."""
    from mixacm.evaluate import evaluate

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
    model = _AttackInputs(net).eval()
    g = torch.Generator().manual_seed(2)
    x = 0.25 + 0.5 * torch.rand(16, 3, 8, 8, generator=g)
    with torch.no_grad():
        y = net(x).argmax(1)  # every point correct: every point is attacked, all in one batch, in order
    eps, step = 8 / 255, 2 / 255
    evaluate(model, x, y, attacks=["pgd20"], eps=eps, progress=False)
    moved = [a for a in model.attacked if a.shape == x.shape and (a - x).abs().max() > 0]
    assert moved, "the evaluator ran no differentiated forward away from the clean input"
    offset = moved[0] - x
    assert offset.abs().max() <= eps + 1e-6
    assert offset.abs().mean() > 0.35 * eps  # U(-eps, eps): mean |offset| = eps / 2; one step from x: eps / 4
    on_lattice = ((offset / step).round() * step - offset).abs() < 1e-6
    assert on_lattice.float().mean() < 0.1
