"""Cost plan of the gpu tier before a GPU-week is spent: ``pytest verification/ --gpu --plan [-k 'table3:']``.

For the selected cells: the training runs (one per training group and seed, as ``plans.gpu_plan`` builds them) and
evaluations they need, their FLOPs, and GPU-hours on a reference GPU. Forward FLOPs per image are counted by
``torch.utils.flop_counter`` on the meta device (no weights allocated). Assumptions (stated in the output):

- a backward pass costs 2 forwards; an attack step (input gradient) costs a forward + backward = 3 forwards;
- per training image: natural 3F; MixACM / KD 3F + F_teacher; PGD-k AT (3k + 3)F; Fast-AT 6F; ARD (3k + 6)F +
  F_teacher; TRADES / FAT (3k + 7)F (clean target, attack, both halves); MART (3k + 6)F; AWP-TRADES (3k + 13)F;
  Free-AT 3mF per epoch with m replays (its epochs are already divided by m); per epoch, validation on val_n images (clean F, plus 3F per PGD step when selecting by robustness);
- evaluation per test image: clean F; FGSM 4F; PGD-k 3kF; APGD-CE/DLR 300F; FAB 100 x 3F x min(K, 10);
  Square 5000F; AutoAttack (standard) = APGD-CE + APGD-T (9 x 100 steps) + FAB-T (9 x 100) + Square, an upper
  bound (AutoAttack attacks only the points still robust);
- the reference GPU: NVIDIA A100 (312 TFLOP/s bf16 dense peak) at an assumed 40 % utilisation = 125 TFLOP/s.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

REFERENCE_GPU = "NVIDIA A100 (312 TFLOP/s bf16 peak) at 40 % utilisation"
EFFECTIVE_FLOPS = 312e12 * 0.40
TRAIN_SIZE = {"cifar10": 50000, "cifar100": 50000, "imagenet": 1281167}
TEST_SIZE = {"cifar10": 10000, "cifar100": 10000, "imagenet": 5000}  # ImageNet: plans.IMAGENET_EVAL_N
SIDE = {"imagenet": 224}


@lru_cache(maxsize=None)
def forward_flops(arch: str, num_classes: int, side: int) -> float:
    """Forward FLOPs of one image (multiply-add = 2 FLOPs), counted on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mixacm.models import build_model

    with torch.device("meta"):
        model = build_model(arch, num_classes=num_classes)
        x = torch.empty(1, 3, side, side)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return float(counter.get_total_flops())


def _teacher_arch(train: dict[str, Any]) -> tuple[str, int] | None:
    t = train.get("teacher")
    if not t:
        return None
    if t.startswith("robustbench:"):
        from mixacm.teachers import ROBUSTBENCH_TEACHERS
        info = ROBUSTBENCH_TEACHERS[t.split(":", 1)[1]]
        return info.arch, info.num_classes
    return "wrn-28-10", train.get("teacher_num_classes") or 100  # the env-variable teachers of specs.TEACHER_ENV


def attack_cost(name: str, k: int) -> float:
    """Forward-pass equivalents per test image for one attack (see module docstring)."""
    from mixacm.attacks import parse_attack

    spec = parse_attack(name)
    fab = 100 * 3 * min(k, 10)
    if spec.kind == "fgsm":
        return 4.0
    if spec.kind in ("pgd", "cw"):
        return 3.0 * spec.steps * spec.restarts
    parts = spec.aa_parts or ("apgd-ce", "apgd-t", "fab-t", "square")
    per = {"apgd-ce": 300, "apgd-dlr": 300, "apgd-t": 9 * 300, "fab": fab, "fab-t": 9 * 300, "square": 5000}
    return float(sum(per[p] for p in parts))


def run_cost(run) -> dict[str, float]:
    """FLOPs of one training run (one seed) and of its evaluations, from a RunSpec of ``plans.gpu_plan``."""
    from mixacm.config import load_config

    cfg = load_config(None, {k: v for k, v in run.overrides.items()})
    ds = cfg.dataset
    k = 1000 if ds == "imagenet" else (100 if ds == "cifar100" else 10)
    side = SIDE.get(ds, 32)
    f_s = forward_flops(cfg.model, k, side)
    t = _teacher_arch(run.overrides)
    f_t = forward_flops(t[0], t[1], side) if t else 0.0
    steps = cfg.attack_steps
    per_image = {"natural": 3 * f_s, "mixacm": 3 * f_s + f_t, "kd": 3 * f_s + f_t, "fast_at": 6 * f_s,
                 "pgd_at": (3 * steps + 3) * f_s, "ard": (3 * steps + 6) * f_s + f_t,
                 "trades": (3 * steps + 7) * f_s, "fat": (3 * steps + 7) * f_s, "mart": (3 * steps + 6) * f_s,
                 "awp": (3 * steps + 13) * f_s, "free_at": 3 * cfg.free_replays * f_s}[cfg.method]
    n_train = TRAIN_SIZE[ds] * cfg.data_fraction * (1 - cfg.val_fraction)
    val = (cfg.val_n or 0) * f_s * (1 + (3 * cfg.val_attack_steps if cfg.select_metric == "val_rob" else 0))
    train = cfg.epochs * (n_train * per_image + val)
    evals = TEST_SIZE[ds] * f_s * (1 + sum(attack_cost(a, k) for a in run.attacks))
    return {"train": train, "eval": evals}


def plan_costs(selected: list[dict[str, Any]]) -> dict[str, Any]:
    """Per table: cells, training runs x seeds, FLOPs and GPU-hours (a run shared by tables counts for the first)."""
    from .plans import gpu_plan

    runnable = [s for s in selected if not s["blocked"]]
    plan = gpu_plan(runnable)
    first_table = {}
    for c in plan.cells:
        first_table.setdefault(c.run, c.table)
    tables: dict[str, dict[str, float]] = {}
    for c in plan.cells:
        tables.setdefault(c.table, {"cells": 0, "runs": 0, "train_flops": 0.0, "eval_flops": 0.0})["cells"] += 1
    for rec in plan.extra_records:
        tables.setdefault(rec["table"], {"cells": 0, "runs": 0, "train_flops": 0.0, "eval_flops": 0.0})["cells"] += 1
    rows = []
    for run in plan.runs:
        cost = run_cost(run)
        n = len(run.seeds or (0,))
        tab = tables[first_table[run.key]]
        tab["runs"] += n
        tab["train_flops"] += n * cost["train"]
        tab["eval_flops"] += n * cost["eval"]
        rows.append({"run": run.key, "table": first_table[run.key], "seeds": n, "attacks": list(run.attacks),
                     "train_gpu_h": n * cost["train"] / EFFECTIVE_FLOPS / 3600,
                     "eval_gpu_h": n * cost["eval"] / EFFECTIVE_FLOPS / 3600})
    for tab in tables.values():
        tab["gpu_hours"] = (tab["train_flops"] + tab["eval_flops"]) / EFFECTIVE_FLOPS / 3600
    return {"reference_gpu": REFERENCE_GPU, "tables": tables, "runs": rows,
            "blocked": [s["id"] for s in selected if s["blocked"]],
            "total_gpu_hours": sum(t["gpu_hours"] for t in tables.values())}


def render(costs: dict[str, Any]) -> str:
    lines = [f"gpu tier cost plan (estimates on {costs['reference_gpu']}; assumptions: verification/costs.py)",
             f"{'table':<8} {'cells':>5} {'runs':>5} {'train PFLOP':>12} {'eval PFLOP':>11} {'GPU-h':>9}"]
    for name, t in sorted(costs["tables"].items(), key=lambda kv: (len(kv[0]), kv[0])):
        lines.append(f"{name:<8} {t['cells']:>5} {t['runs']:>5} {t['train_flops'] / 1e15:>12.0f} "
                     f"{t['eval_flops'] / 1e15:>11.0f} {t['gpu_hours']:>9.1f}")
    lines.append(f"total GPU-hours: {costs['total_gpu_hours']:.0f}; {len(costs['runs'])} training groups; "
                 f"{len(costs['blocked'])} selected cells cannot run (see their skip reasons)")
    for r in sorted(costs["runs"], key=lambda r: -(r["train_gpu_h"] + r["eval_gpu_h"]))[:10]:
        lines.append(f"  {r['run']:<48} x{r['seeds']} train {r['train_gpu_h']:8.1f} h  eval {r['eval_gpu_h']:7.1f} h")
    return "\n".join(lines)
