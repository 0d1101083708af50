"""Cost plan of the gpu tier before a GPU-week is spent: ``pytest verification/ --gpu --plan [-k 'table3:']
[--measured FILE]``.

For the selected cells: the training runs (one per training group and seed, as ``plans.gpu_plan`` builds them) and
evaluations they need, their FLOPs, and GPU-hours on a reference GPU. Forward FLOPs per image are counted by
``torch.utils.flop_counter`` on the meta device (no weights allocated). Assumptions (stated in the output):

- a backward pass costs 2 forwards (input and weight gradients); an attack step needs the input gradient only
  (the weights are frozen or their gradients unused): a forward + an input-gradient backward = 2 forwards;
- per training image: natural 3F; MixACM / KD 3F + F_teacher; PGD-k AT (2k + 3)F; Fast-AT 5F; ARD (2k + 6)F +
  F_teacher; TRADES / FAT (2k + 7)F (clean target, attack, both halves); MART (2k + 6)F; AWP-TRADES (2k + 13)F;
  Free-AT 3mF per epoch with m replays (each replay is a full training step; its epochs are already divided by m);
  per epoch, validation on val_n images (clean F, plus 2F per PGD step when selecting by robustness);
- evaluation per test image: clean F; FGSM 3F; PGD-k (2k + 1)F per restart (the last forward checks the result);
  APGD-CE/DLR 100 x 2F + F; FAB 100 x (min(K, 10) + 2)F (a forward, one input gradient per class, a forward);
  FAB-T 9 x 100 x 2F; APGD-T 9 x 100 x 2F; Square 5000F; AutoAttack (standard) = APGD-CE + APGD-T + FAB-T + Square,
  an upper bound (AutoAttack attacks only the points still robust);
- the reference GPU: NVIDIA A100; training in bf16 (312 TFLOP/s dense peak), evaluation in fp32 with TF32 tensor
  cores (156 TFLOP/s), both at an assumed 40 % utilisation. ``--measured FILE`` replaces both rates by the ones
  ``python -m verification.device_check`` measured (its part b, ``b.json``): per method the achieved training
  FLOP/s of the trainer's real step at the paper's CIFAR setting (WRN-34-10 student, batch 128; methods it did not
  measure take the median of those it did), and the evaluator's achieved PGD FLOP/s. Measured on WRN-34-10, they
  overstate the speed of much smaller students.
"""
from __future__ import annotations

import json
import statistics
from functools import lru_cache
from pathlib import Path
from typing import Any

REFERENCE_GPU = "NVIDIA A100 (bf16 312 TFLOP/s training, TF32 156 TFLOP/s evaluation) at 40 % utilisation"
UTILISATION = 0.40
TRAIN_FLOPS = 312e12 * UTILISATION  # bf16 autocast (the trainer on CUDA)
EVAL_FLOPS = 156e12 * UTILISATION  # fp32 with TF32 tensor cores (the evaluator does not autocast)
EFFECTIVE_FLOPS = TRAIN_FLOPS  # the name earlier versions used for the one (training) rate
TRAIN_SIZE = {"cifar10": 50000, "cifar100": 50000, "imagenet": 1281167}
TEST_SIZE = {"cifar10": 10000, "cifar100": 10000, "imagenet": 5000}  # ImageNet: plans.IMAGENET_EVAL_N
SIDE = {"imagenet": 224}
MEASURED_STUDENT, MEASURED_BATCH = "gowal-wrn-34-10", 128  # the rows of a measurement that price training


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
    if spec.kind == "fgsm":
        return 3.0
    if spec.kind in ("pgd", "cw"):
        return (2.0 * spec.steps + 1.0) * spec.restarts
    parts = spec.aa_parts or ("apgd-ce", "apgd-t", "fab-t", "square")
    per = {"apgd-ce": 201, "apgd-dlr": 201, "apgd-t": 9 * 200, "fab": 100 * (min(k, 10) + 2), "fab-t": 9 * 200,
           "square": 5000}
    return float(sum(per[p] for p in parts))


def train_passes(method: str, attack_steps: int, free_replays: int = 1) -> tuple[float, float]:
    """(student forwards, teacher forwards) per training image of one method (see module docstring)."""
    k = attack_steps
    student = {"natural": 3, "mixacm": 3, "kd": 3, "fast_at": 5, "pgd_at": 2 * k + 3, "ard": 2 * k + 6,
               "trades": 2 * k + 7, "fat": 2 * k + 7, "mart": 2 * k + 6, "awp": 2 * k + 13,
               "free_at": 3 * free_replays}[method]
    teacher = 1 if method in ("mixacm", "kd", "ard") else 0
    return float(student), float(teacher)


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
    p_s, p_t = train_passes(cfg.method, cfg.attack_steps, cfg.free_replays)
    per_image = p_s * f_s + p_t * f_t
    n_train = TRAIN_SIZE[ds] * cfg.data_fraction * (1 - cfg.val_fraction)
    val = (cfg.val_n or 0) * f_s * (1 + (2 * cfg.val_attack_steps if cfg.select_metric == "val_rob" else 0))
    train = cfg.epochs * (n_train * per_image + val)
    evals = TEST_SIZE[ds] * f_s * (1 + sum(attack_cost(a, k) for a in run.attacks))
    return {"train": train, "eval": evals, "method": cfg.method}


def load_measured(path: str | Path) -> dict[str, Any]:
    """Training and evaluation rates measured by ``python -m verification.device_check`` (part b): ``path`` is its
    ``b.json``, a record directory holding one, or a JSON with the part under "b". -> {"gpu", "train": {method:
    FLOP/s}, "train_default": FLOP/s, "eval": FLOP/s, "source"}."""
    p = Path(path)
    if p.is_dir():
        p = p / "b.json"
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"--measured {path}: no throughput rows to read ({e}); pass the b.json that "
                         f"python -m verification.device_check wrote, or its directory") from None
    data = data.get("b", data) if isinstance(data, dict) else {}
    rows = [r for r in data.get("rows", []) if r.get("status", "ok") == "ok" and r.get("achieved_tflops")]
    paper = [r for r in rows if r.get("student") == MEASURED_STUDENT and r.get("batch") == MEASURED_BATCH]
    train = {}
    for r in paper:
        train.setdefault(r["method"], 1e12 * float(r["achieved_tflops"]))
    evals = [1e12 * float(r["achieved_tflops"]) for r in data.get("eval_rows", [])
             if r.get("status", "ok") == "ok" and r.get("achieved_tflops")]
    if not train or not evals:
        raise ValueError(f"--measured {path}: no throughput rows of the trainer at {MEASURED_STUDENT}, batch "
                         f"{MEASURED_BATCH} and of the evaluator's PGD; was part b of the device check run?")
    return {"gpu": data.get("gpu") or "the measured GPU", "train": train,
            "train_default": statistics.median(train.values()), "eval": max(evals), "source": str(p)}


def plan_costs(selected: list[dict[str, Any]], measured: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per table: cells, training runs x seeds, FLOPs and GPU-hours (a run shared by tables counts for the first).
    ``measured`` (``load_measured``): rates of a real GPU instead of the reference GPU's assumed ones."""
    from .plans import gpu_plan

    def train_rate(method: str) -> float:
        if measured is None:
            return TRAIN_FLOPS
        return measured["train"].get(method, measured["train_default"])

    eval_rate = EVAL_FLOPS if measured is None else measured["eval"]
    runnable = [s for s in selected if not s["blocked"]]
    plan = gpu_plan(runnable)
    first_table = {}
    for c in plan.cells:
        first_table.setdefault(c.run, c.table)
    tables: dict[str, dict[str, float]] = {}

    def table(name: str) -> dict[str, float]:
        return tables.setdefault(name, {"cells": 0, "runs": 0, "train_flops": 0.0, "eval_flops": 0.0,
                                        "gpu_hours": 0.0})

    for c in plan.cells:
        table(c.table)["cells"] += 1
    for rec in plan.extra_records:
        table(rec["table"])["cells"] += 1
    rows = []
    for run in plan.runs:
        cost = run_cost(run)
        n = len(run.seeds or (0,))
        tab = table(first_table[run.key])
        train_h = n * cost["train"] / train_rate(cost["method"]) / 3600
        eval_h = n * cost["eval"] / eval_rate / 3600
        tab["runs"] += n
        tab["train_flops"] += n * cost["train"]
        tab["eval_flops"] += n * cost["eval"]
        tab["gpu_hours"] += train_h + eval_h
        rows.append({"run": run.key, "table": first_table[run.key], "seeds": n, "attacks": list(run.attacks),
                     "train_gpu_h": train_h, "eval_gpu_h": eval_h})
    gpu = REFERENCE_GPU if measured is None else (
        f"measured on {measured['gpu']} ({measured['source']}): training {measured['train_default'] / 1e12:.0f} "
        f"TFLOP/s (median over methods), evaluation {measured['eval'] / 1e12:.0f} TFLOP/s")
    return {"reference_gpu": gpu, "measured": measured is not None, "tables": tables, "runs": rows,
            "blocked": [s["id"] for s in selected if s["blocked"]],
            "total_gpu_hours": sum(t["gpu_hours"] for t in tables.values())}


def render(costs: dict[str, Any]) -> str:
    how = "GPU-hours " + ("" if costs.get("measured") else "estimated ")
    lines = [f"gpu tier cost plan ({how}{'' if costs.get('measured') else 'on '}{costs['reference_gpu']}; "
             f"assumptions: verification/costs.py)",
             f"{'table':<8} {'cells':>5} {'runs':>5} {'train PFLOP':>12} {'eval PFLOP':>11} {'GPU-h':>9}"]
    for name, t in sorted(costs["tables"].items(), key=lambda kv: (len(kv[0]), kv[0])):
        lines.append(f"{name:<8} {t['cells']:>5} {t['runs']:>5} {t['train_flops'] / 1e15:>12.0f} "
                     f"{t['eval_flops'] / 1e15:>11.0f} {t['gpu_hours']:>9.1f}")
    lines.append(f"total GPU-hours: {costs['total_gpu_hours']:.0f}; {len(costs['runs'])} training groups; "
                 f"{len(costs['blocked'])} selected cells cannot run (see their skip reasons)")
    for r in sorted(costs["runs"], key=lambda r: -(r["train_gpu_h"] + r["eval_gpu_h"]))[:10]:
        lines.append(f"  {r['run']:<48} x{r['seeds']} train {r['train_gpu_h']:8.1f} h  eval {r['eval_gpu_h']:7.1f} h")
    return "\n".join(lines)
