"""Per-step training cost on CPU: natural, MixACM (incl. teacher forward), PGD-7 AT, ARD on the same student.

Claim (Sec. 1, Table 1 "Extra B.P. Steps"): MixACM costs about one natural step plus a teacher forward, PGD-7 AT
about 8 forward/backward passes. Goals: MixACM <= 1.10 x (natural step + teacher forward); PGD-7 AT / MixACM >= 4.
Ratios are measured within one run: interleaved rounds, and the minimum over rounds per method (the usual estimator
of intrinsic cost on a shared machine; medians are reported too).
Run: pytest verification/benchmarks --benchmark-enable
"""
from __future__ import annotations

import statistics
import time

import pytest
import torch

from mixacm.config import load_config
from mixacm.methods import METHODS
from mixacm.models import build_model
from mixacm.steps import StepContext, WithFeatures
from mixacm.teachers import FrozenTeacher

ARCH, BATCH, SIDE = "wrn-16-1", 32, 32  # same student for every method; teacher = same architecture (Table 4 row)


def _setup(method: str, overrides: dict | None = None, *, arch: str = ARCH, teacher_arch: str = ARCH,
           batch: int = BATCH, channels_last: bool = False, compile: bool = False):
    """One training step of ``method`` as the trainer builds it; ``channels_last`` / ``compile``: its speed flags."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    # paper defaults: eps 8/255, PGD-7 step 2/255; the compared methods with their own settings (overrides)
    cfg = load_config(None, {"method": method, "model": arch, **(overrides or {})})
    student = build_model(arch, num_classes=10)
    teacher = FrozenTeacher(build_model(teacher_arch, num_classes=10))
    if channels_last:
        student, teacher = student.to(memory_format=torch.channels_last), teacher.to(memory_format=torch.channels_last)
    wrapped = WithFeatures(student, cfg=cfg)
    if compile:
        wrapped = torch.compile(wrapped)
    opt = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    ctx = StepContext(cfg=cfg, student=wrapped, student_module=student, teacher=teacher,
                      generator=torch.Generator().manual_seed(0), feature_term_in_forward=True)
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(batch, 3, SIDE, SIDE, generator=g), torch.randint(0, 10, (batch,), generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    student.train()

    def step():
        for _ in range(cfg.free_replays):  # Free-AT: m replays of the minibatch
            out = METHODS[method](ctx, x, y)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()
            if out.post_step is not None:
                out.post_step()

    def teacher_forward():
        teacher.forward_intermediates(x)

    return step, teacher_forward


CASES = ["natural", "mixacm", "pgd_at", "ard"]


@pytest.mark.parametrize("method", CASES)
def test_bench_step(benchmark, method):
    step, _ = _setup(method)
    step()  # warm-up
    benchmark.pedantic(step, rounds=3, iterations=1)


def test_bench_teacher_forward(benchmark):
    _, fwd = _setup("mixacm")
    fwd()
    benchmark.pedantic(fwd, rounds=5, iterations=1)


def _interleaved(fns: dict, rounds: int) -> dict:
    """Seconds per call of each function over ``rounds`` interleaved rounds: drifting load hits every one alike."""
    times: dict = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return times


def measure_ratios(rounds: int = 9) -> dict[str, float]:
    fns = {m: _setup(m)[0] for m in CASES}
    fns["teacher_fwd"] = _setup("mixacm")[1]
    for f in fns.values():
        f()  # warm-up
    times = _interleaved(fns, rounds)
    med = {k: min(v) for k, v in times.items()}
    return {**{f"{k}_s": v for k, v in med.items()},
            **{f"{k}_median_s": statistics.median(v) for k, v in times.items()},
            "mixacm_over_natural_plus_teacher": med["mixacm"] / (med["natural"] + med["teacher_fwd"]),
            "pgd_at_over_mixacm": med["pgd_at"] / med["mixacm"],
            "ard_over_mixacm": med["ard"] / med["mixacm"]}


def test_step_time_ratios(record_property):
    r = measure_ratios()
    for k, v in r.items():
        record_property(k, v)
    print("\nstep-time ratios:", {k: round(v, 4) for k, v in r.items()})
    assert r["mixacm_over_natural_plus_teacher"] <= 1.10, (
        f"MixACM step {r['mixacm_s']:.4f}s vs natural {r['natural_s']:.4f}s + teacher forward "
        f"{r['teacher_fwd_s']:.4f}s: ratio {r['mixacm_over_natural_plus_teacher']:.3f}, goal <= 1.10")
    assert r["pgd_at_over_mixacm"] >= 4, (
        f"PGD-7 AT step {r['pgd_at_s']:.4f}s / MixACM {r['mixacm_s']:.4f}s = {r['pgd_at_over_mixacm']:.2f}, goal >= 4")


# Table 1 "Extra B.P. Steps" of each compared method (spec row -> method config of verification/specs.py)
COMPARED = {"pgd7_at": "AT (Madry)", "trades": "TRADES", "mart": "MART", "awp": "AWP", "fat": "FAT",
            "free_at": "Free AT", "mixacm": "Ours"}


def test_compared_methods_step_cost(record_property):
    """Cost of one minibatch (Free-AT: its m replays) relative to a natural step, beside the paper's 'Extra B.P.
    Steps' column (every compared method has them; MixACM has none)."""
    from verification import specs

    fns = {"natural": _setup("natural")[0]}
    for key in COMPARED:
        over = {k: v for k, v in specs.METHOD_CONFIG[key].items()
                if k not in ("method", "epochs", "select_metric")}
        fns[key] = _setup(specs.METHOD_CONFIG[key]["method"], {**over, "awp_warmup_epochs": 0})[0]
    for f in fns.values():
        f()
    best = {k: min(v) for k, v in _interleaved(fns, 3).items()}
    ratios = {k: best[k] / best["natural"] for k in COMPARED}
    lines = [f"{COMPARED[k]:<12} {best[k]:.4f} s  {ratios[k]:5.2f} x natural  extra B.P. steps: "
             f"{'no' if k == 'mixacm' else 'yes'}" for k in COMPARED]
    print("\nper-minibatch cost (WRN-16-1, batch 32, 1 thread):\n" + "\n".join(lines))
    for k, v in ratios.items():
        record_property(f"{k}_over_natural", v)
    for k in COMPARED:
        if k != "mixacm":
            assert ratios[k] >= 2.0, f"{COMPARED[k]}: {ratios[k]:.2f} x natural; an adversarial method costs more"


def test_cpu_speed_flags_the_trainer_uses_are_what_pays(record_property, tmp_path, monkeypatch):
    """channels_last and torch.compile on CPU, alone and together, for the cpu plan's costliest steps (WRN-16-1
    students of a WRN-16-2 teacher, batch 128): the trainer's defaults cost at most 5 % more than the fastest choice
    over one cpu-plan run, compile time included (what "use what pays" means for a run of a few hundred steps).
    Compiles start from an empty inductor cache, as a run's first compile does on a new machine."""
    from mixacm.config import TrainConfig
    from verification.plans import cpu_plan

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    torch._dynamo.reset()

    base, batch = cpu_plan(".", only=("mixacm",)).base, TrainConfig.batch_size
    steps = int(50_000 * (1 - base["val_fraction"]) * base["data_fraction"]) // batch * base["epochs"]  # CIFAR-10 train
    flags = [(cl, comp) for cl in (False, True) for comp in (False, True)]
    costs: dict[tuple[str, bool, bool], float] = {}
    lines = []
    for method in ("mixacm", "pgd_at"):
        fns, first = {}, {}
        for cl, comp in flags:
            fns[cl, comp] = _setup(method, arch="wrn-16-1", teacher_arch="wrn-16-2", batch=batch, channels_last=cl,
                                   compile=comp)[0]
            t0 = time.perf_counter()
            fns[cl, comp]()  # compile happens here
            first[cl, comp] = time.perf_counter() - t0
        times = _interleaved(fns, 5)
        for k in flags:
            step = min(times[k])
            costs[(method, *k)] = first[k] + (steps - 1) * step
            speedup = min(times[(False, False)]) / step
            lines.append(f"{method:<7} channels_last={k[0]!s:<5} compile={k[1]!s:<5} {step:.3f} s/step "
                         f"({speedup:.2f}x), first step {first[k]:.1f} s, run of {steps} steps {costs[(method, *k)]:.0f} s")
            record_property(f"{method}_cl{int(k[0])}_compile{int(k[1])}_speedup", speedup)
    print("\nCPU speed flags (1 thread):\n" + "\n".join(lines))
    default = (TrainConfig.channels_last, TrainConfig.compile)
    for method in ("mixacm", "pgd_at"):
        best = min(flags, key=lambda k: costs[(method, *k)])
        ours, fastest = costs[(method, *default)], costs[(method, *best)]
        assert ours <= 1.05 * fastest, (
            f"{method}: the trainer's defaults (channels_last={default[0]}, compile={default[1]}) cost {ours:.0f} s "
            f"per cpu-plan run; channels_last={best[0]}, compile={best[1]} costs {fastest:.0f} s "
            f"(ratio {ours / fastest:.3f}, tolerance 1.05)")
