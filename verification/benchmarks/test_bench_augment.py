"""Augmentation cost against a training step on CPU (1 thread): RandAugment + crop/flip of a CIFAR-size batch.

Goal: augment(x, "randaugment") on a batch of 128 32x32 images costs at most 5% of a WRN-16-1 natural training step
at batch 128. Ratios are measured within one run: interleaved rounds, minimum over rounds per function (medians
reported too), as in test_bench_train_step.py.
Run: pytest verification/benchmarks --benchmark-enable
"""
from __future__ import annotations

import statistics
import time

import torch

from mixacm.config import load_config
from mixacm.data import augment
from mixacm.methods import METHODS
from mixacm.models import build_model
from mixacm.steps import StepContext, WithFeatures

ARCH, BATCH, SIDE = "wrn-16-1", 128, 32


def _natural_step():
    torch.manual_seed(0)
    cfg = load_config(None, {"method": "natural", "model": ARCH})
    student = build_model(ARCH, num_classes=10)
    opt = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    ctx = StepContext(cfg=cfg, student=WithFeatures(student), student_module=student, teacher=None,
                      generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(BATCH, 3, SIDE, SIDE, generator=g), torch.randint(0, 10, (BATCH,), generator=g)
    student.train()

    def step():
        out = METHODS["natural"](ctx, x, y)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    return step


def _augment():
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 256, (BATCH, 3, SIDE, SIDE), generator=g).float().div_(255)  # uint8-valued, like CIFAR
    gen = torch.Generator().manual_seed(3)
    return lambda: augment(x, "randaugment", generator=gen)


def test_bench_randaugment(benchmark):
    torch.set_num_threads(1)
    f = _augment()
    f()
    benchmark.pedantic(f, rounds=20, iterations=1)


def measure_augment_ratio(rounds: int = 15) -> dict[str, float]:
    torch.set_num_threads(1)
    fns = {"natural": _natural_step(), "augment": _augment()}
    for f in fns.values():
        f()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):  # interleaved
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in times.items()}
    return {**{f"{k}_s": v for k, v in best.items()},
            **{f"{k}_median_s": statistics.median(v) for k, v in times.items()},
            "augment_over_natural": best["augment"] / best["natural"]}


def test_augment_cost_ratio(record_property):
    r = measure_augment_ratio()
    for k, v in r.items():
        record_property(k, v)
    print(f"\naugment (RandAugment + crop/flip, batch {BATCH}): {r['augment_s'] * 1e3:.2f} ms "
          f"(median {r['augment_median_s'] * 1e3:.2f}); natural {ARCH} step: {r['natural_s'] * 1e3:.2f} ms "
          f"(median {r['natural_median_s'] * 1e3:.2f}); ratio {r['augment_over_natural']:.4f}")
    assert r["augment_over_natural"] <= 0.05, (
        f"augment {r['augment_s']:.4f}s / natural step {r['natural_s']:.4f}s = {r['augment_over_natural']:.3f}, "
        "goal <= 0.05")
