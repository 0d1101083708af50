"""The first run on a real GPU: one command that proves the CUDA path, measures paper-scale throughput and
trains a GPU-scale mini-reproduction, in parts that each stop at their own deadline and write their JSON as they end.

    python -m verification.device_pack                                  # here, once: build/device/ (about 48 MiB)
    python -m verification.device_check --out DIR --budget 420          # on the GPU machine
    python -m verification.device_check --out DIR --budget 120 --smoke  # any machine: every part at toy size

Parts (each a child process with its own deadline: a crash or hang in one costs nothing to the others; each writes
``DIR/<part>.json`` after every item, so what finished before a kill is kept; ``DIR/summary.json`` at the end):

- **pre**: versions (Python, torch, CUDA, cuDNN, driver, GPU, commit from git or ``$MIXACM_COMMIT``), which optional
  packages import, the measured bf16 / TF32 / fp32 matmul ceilings.
- **a**: targeted CUDA checks (loss dtypes under autocast for every method, AWP under autocast, host syncs per
  training step with ``torch.cuda.set_sync_debug_mode``, channels_last reaching every convolution of every model
  family, bit-exact resume with determinism on, the evaluator's self-checks with cudnn.benchmark), then the gpu
  tier's own cells through ``plans.gpu_plan`` + ``runner.run_plan`` at rehearsal amounts, one training group
  at a time, chosen to cover every method, model family, data set, teacher and attack with few groups.
  RobustBench is not on the device: its teachers are replaced by random-weight checkpoints of the same architecture
  (said so in each group's record) and the ``robustbench:NAME`` load is "not available on the device"; AutoAttack
  runs from the sources ``device_pack`` carries, else its cells are "not available on the device".
- **b**: throughput at paper scale with the trainer's real step (the method functions of ``mixacm.methods``, its
  optimiser, on-device batches, bf16 autocast and channels_last on CUDA): images/s, achieved TFLOP/s (FLOPs of
  ``verification.costs``) against the measured bf16 ceiling, peak memory, host syncs per step; evaluation PGD at
  the evaluator's batch sizes in fp32/TF32. ``pytest verification/ --gpu --plan --measured DIR/b.json`` prices the
  gpu tier from it.
- **c**: a mini-reproduction on real CIFAR-10 from the carried pack (``mixacm.data`` "cifar10-pack"): a Fast-AT
  WRN-16-8 teacher, then MixACM (alpha_acm at WRN-34-10 widths), PGD-7 AT and natural WRN-16-4 students at equal
  epochs sized from part b's measured rates, FGSM and PGD-20 with per-image masks on the 2,000 packed test images,
  claims through ``verification/claims.py``.

Statuses: "ok", "fail" (the check ran and found a defect), "error" (it raised; traceback tail kept), "skipped"
(reason given), "not available on the device" (a package the machine lacks).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
DEVICE_DIR = ROOT / "build" / "device"  # verification.device_pack writes here (ignored; travels by carry)
PARTS = ("pre", "a", "b", "c")
SHARES = {"pre": 0.05, "a": 0.35, "b": 0.27, "c": 0.33}  # of the budget; time a part leaves goes to the next
GRACE_S = 20  # a part past its deadline by this much is killed (its JSON so far is kept)
NOT_AVAILABLE = "not available on the device"

if (DEVICE_DIR / "site").is_dir() and importlib.util.find_spec("pyautoattack") is None:
    sys.path.append(str(DEVICE_DIR / "site"))  # carried AutoAttack sources (verification.device_pack)


# ----------------------------------------------------------------------------------------------- sizes
def sizes(smoke: bool) -> dict[str, Any]:
    """Amounts of every part: paper scale on the GPU, toy scale in --smoke (same code)."""
    if smoke:
        return {
            "matmul_n": 128, "family_side": {"resnet50": 64},
            "a_small": ("wrn-10-1", "wrn-10-1", 4), "a_groups": 3, "a_cell_flops": 2e9,
            "b_rows": [("natural", "gowal-wrn-10-1", None, 8, 32), ("mixacm", "gowal-wrn-10-1", "gowal-wrn-10-1", 8, 32),
                       ("pgd_at", "gowal-wrn-10-1", None, 8, 32), ("free_at", "gowal-wrn-10-1", None, 8, 32),
                       ("natural", "resnet50", None, 2, 64)],
            "b_eval": ("gowal-wrn-10-1", (8, 16)), "b_row_s": 0.0, "b_max_steps": 2, "b_warmup_steps": 1,
            "b_eval_steps": 2,
            "c_teacher": "wrn-10-1", "c_student": "wrn-10-1", "c_batch": 32, "c_max_steps": 2, "c_val_n": 20,
            "c_epochs": (1, 1), "c_eval_iterations": 2,
        }
    return {
        "matmul_n": 8192, "family_side": {"resnet50": 224},
        "a_small": ("wrn-16-1", "wrn-16-2", 64), "a_groups": None, "a_cell_flops": None,
        "b_rows": [("natural", "gowal-wrn-34-10", None, 128, 32),
                   ("mixacm", "gowal-wrn-34-10", "gowal-wrn-28-10", 128, 32),
                   ("pgd_at", "gowal-wrn-34-10", None, 128, 32),
                   ("trades", "gowal-wrn-34-10", None, 128, 32),
                   ("awp", "gowal-wrn-34-10", None, 128, 32),
                   ("free_at", "gowal-wrn-34-10", None, 128, 32),
                   ("mixacm", "gowal-wrn-34-10", "gowal-wrn-70-16", 128, 32),
                   ("natural", "resnet50", None, 256, 224),
                   ("mixacm", "resnet50", "resnet50", 256, 224),
                   ("natural", "gowal-wrn-34-10", None, 512, 32),
                   ("mixacm", "gowal-wrn-34-10", "gowal-wrn-28-10", 512, 32),
                   ("pgd_at", "gowal-wrn-34-10", None, 512, 32)],
        "b_eval": ("gowal-wrn-34-10", (128, 1024)), "b_row_s": 3.0, "b_max_steps": 40, "b_warmup_steps": 3,
        "b_eval_steps": 10,
        "c_teacher": "wrn-16-8", "c_student": "wrn-16-4", "c_batch": 128, "c_max_steps": None, "c_val_n": 200,
        "c_epochs": None, "c_eval_iterations": None,
    }


# ------------------------------------------------------------------------------------------- part runner
class Part:
    """One part's JSON, rewritten (atomically) after every item, so a kill keeps everything finished before it."""

    def __init__(self, name: str, out: Path, deadline: float, smoke: bool):
        self.name, self.path, self.deadline, self.smoke = name, out / f"{name}.json", deadline, smoke
        self.t0 = time.time()
        self.data: dict[str, Any] = {"part": name, "status": "running", "smoke": smoke, "items": [],
                                     "deadline_in_s": round(deadline - self.t0, 1)}
        self.save()

    def left(self) -> float:
        return self.deadline - time.time()

    def save(self) -> None:
        self.data["seconds"] = round(time.time() - self.t0, 2)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)

    def item(self, name: str, fn: Callable[[], dict[str, Any] | None], *, need_s: float = 0.0) -> dict[str, Any]:
        """Run one item unless the part's deadline is nearer than ``need_s``; record its status and result."""
        rec: dict[str, Any] = {"name": name}
        if self.left() < need_s:
            rec.update(status="skipped", reason=f"the part's deadline is {max(self.left(), 0):.0f} s away "
                                                f"(this item needs about {need_s:.0f} s)")
        else:
            t = time.time()
            try:
                res = fn() or {}
                rec.update({"status": "ok", **res})
            except Unavailable as e:
                rec.update(status=NOT_AVAILABLE, reason=str(e))
            except Exception as e:  # noqa: BLE001 - a failed item is a result, the next one still runs
                rec.update(status="error", error=f"{type(e).__name__}: {str(e)[:800]}",
                           traceback=traceback.format_exc()[-3000:])
            rec["seconds"] = round(time.time() - t, 2)
        self.data["items"].append(rec)
        print(f"[device_check {self.name}] {name}: {rec['status']}"
              + (f" ({rec.get('reason') or rec.get('error') or ''})" if rec["status"] != "ok" else "")
              + f" [{rec.get('seconds', 0)} s]", flush=True)
        self.save()
        return rec

    def finish(self) -> None:
        statuses = Counter(i["status"] for i in self.data["items"])
        self.data["status"] = "ok" if set(statuses) <= {"ok", "skipped", NOT_AVAILABLE} else "fail"
        self.data["item_statuses"] = dict(statuses)
        self.save()


class Unavailable(RuntimeError):
    """A package the device lacks: the item is reported "not available on the device"."""


def have(module: str) -> bool:
    try:
        __import__(module)
        return True
    except Exception:  # noqa: BLE001 - any import failure means "not usable here"
        return False


def have_robustbench() -> bool:
    try:
        from mixacm.teachers import _robustbench_utils
        _robustbench_utils()
        return True
    except Exception:  # noqa: BLE001
        return False


def _device(smoke: bool, requested: str | None = None):
    import torch
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() and not smoke else "cpu")


def _sync(device) -> None:
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device):
    """What the trainer uses: bf16 autocast on CUDA, nothing on the CPU."""
    import torch
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def _check_autocast(device):
    """bf16 autocast on either device (the targeted dtype checks: CPU autocast reproduces the CUDA behaviour)."""
    import torch
    return torch.autocast(device.type, dtype=torch.bfloat16)


@contextlib.contextmanager
def count_syncs(device, out: dict[str, Any]):
    """Host syncs of the enclosed CUDA work (torch.cuda.set_sync_debug_mode("warn")): out["syncs"], out["where"]."""
    import warnings

    import torch
    if device.type != "cuda":
        out.update(syncs=None, where={}, note="no CUDA: host syncs are counted on the GPU only")
        yield
        return
    torch.cuda.synchronize(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode("default")
    hits = [w for w in caught if "synchroniz" in str(w.message).lower()]
    where = Counter(f"{_rel(w.filename)}:{w.lineno}" for w in hits)
    out.update(syncs=len(hits), where=dict(where.most_common(12)))


def _rel(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return path


# ------------------------------------------------------------------------------- the trainer's step, as built
class TrainerStep:
    """One method's training step as ``mixacm.train`` builds and runs it (StepContext, WithFeatures, SGD with the
    config's settings, the LR schedule, InMemoryBatches on the device, channels_last, bf16 autocast on CUDA, the
    loss-term window read every log_every steps), on random weights and random images."""

    def __init__(self, method: str, student: str, teacher: str | None, *, batch: int, device, side: int = 32,
                 k: int | None = None, n_images: int | None = None, over: dict[str, Any] | None = None,
                 seed: int = 0):
        import torch

        from mixacm.batches import InMemoryBatches
        from mixacm.config import TrainConfig
        from mixacm.normalization import STATS
        from mixacm.methods import METHODS, NEEDS_TEACHER
        from mixacm.models import build_model
        from mixacm.steps import StepContext, WithFeatures
        from mixacm.teachers import FrozenTeacher
        from mixacm.train import _distill_modules, _lr_factor, param_groups

        k = k or (1000 if side == 224 else 10)
        base = {"method": method, "model": student, "batch_size": batch, "epochs": 1, "progress": False,
                "dataset": "imagenet" if side == 224 else "cifar10",
                "deterministic": False, "awp_warmup_epochs": 0, "free_replays": 8 if method == "free_at" else 1,
                "attack_steps": 10 if method in ("trades", "mart", "awp", "fat") else 7}
        self.cfg = cfg = TrainConfig(**{**base, **(over or {})})
        self.device, self.batch, self.method = device, batch, method
        torch.manual_seed(seed)
        mean, std = STATS["imagenet" if side == 224 else "cifar10"]
        s = build_model(student, num_classes=k, mean=mean, std=std).to(device)
        t = None
        if method in NEEDS_TEACHER:
            tm = build_model(teacher or student, num_classes=k, mean=mean, std=std).to(device)
            t = FrozenTeacher(tm, feature_point=cfg.feature_point, name=str(teacher), num_classes=k)
        distill = _distill_modules(cfg, t, s).to(device)
        if cfg.channels_last:
            s = s.to(memory_format=torch.channels_last)
            t = t.to(memory_format=torch.channels_last) if t is not None else None
        self.student, self.teacher = s, t
        gen = torch.Generator().manual_seed(seed)
        n = n_images or batch * 2
        g = torch.Generator().manual_seed(seed + 1)
        x = torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=g).float().div_(255)
        y = torch.randint(0, k, (n,), generator=g)
        self.source = InMemoryBatches(x, y, global_batch=batch, generator=gen, device=device,
                                      augment="crop_flip" if side <= 64 else "none", channels_last=cfg.channels_last)
        self.opt = torch.optim.SGD(param_groups(cfg, [s, distill]), lr=cfg.lr, momentum=cfg.momentum,
                                   nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, _lr_factor(cfg, 10**6))
        wrapped = WithFeatures(s, distill=distill, cfg=cfg)
        self.ctx = StepContext(cfg=cfg, student=wrapped, student_module=s, teacher=t, generator=gen,
                               affine=distill["affine"] if "affine" in distill else None,
                               adapters=distill["adapters"] if "adapters" in distill else None,
                               feature_term_in_forward=True)
        self.ctx.epoch = 1
        self.step_fn = METHODS[method]
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.pending: list = []
        self.names: list[str] | None = None
        self.n_steps, self._epoch, self._it = 0, 0, None
        s.train()

    def _batch(self):
        while True:
            if self._it is None:
                self._it = iter(self.source.epoch(self._epoch))
                self._epoch += 1
            try:
                return next(self._it)
            except StopIteration:
                self._it = None

    def steps(self, n: int) -> None:
        """n optimiser steps of the trainer's loop body (Free-AT: its replays are steps)."""
        import torch
        done = 0
        while done < n:
            xb, yb = self._batch()
            for _ in range(self.cfg.free_replays):
                with _autocast(self.device):
                    out = self.step_fn(self.ctx, xb, yb)
                if self.names is None:
                    self.names = list(out.terms)
                self.pending.append(torch.stack([out.loss.detach().float(),
                                                 *(out.terms[k].float() for k in self.names)]))
                self.opt.zero_grad(set_to_none=True)
                out.loss.backward()
                self.opt.step()
                if out.post_step is not None:
                    out.post_step()
                self.sched.step()
                if out.logits.shape[0] == len(yb):
                    self.correct += (out.logits.detach().argmax(1) == yb).sum()
                self.n_steps += 1
                done += 1
                if self.n_steps % self.cfg.log_every == 0:  # the trainer's windowed read (one host sync)
                    rows = torch.stack(self.pending)
                    rows.double().cpu().tolist()
                    self.pending.clear()


# =============================================================================================== part pre
def part_pre(P: Part, S: dict[str, Any], device) -> None:
    P.item("versions", lambda: versions(device))
    import torch
    for name, dtype, tf32 in (("matmul_bf16", torch.bfloat16, False), ("matmul_tf32", torch.float32, True),
                              ("matmul_fp32", torch.float32, False)):
        P.item(name, lambda dtype=dtype, tf32=tf32: matmul_rate(device, S["matmul_n"], dtype, tf32), need_s=3)


def versions(device) -> dict[str, Any]:
    import platform

    import torch

    from mixacm.gitinfo import git_commit
    from mixacm.machine import describe

    out: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                           "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                           "device": str(device), "git": git_commit(), "machine": describe(),
                           "packages": {m: have(m) for m in ("torchvision", "pyautoattack", "sklearn", "scipy",
                                                              "PIL", "jinja2", "safetensors", "matplotlib")}}
    out["packages"]["robustbench"] = have_robustbench()
    try:
        import torchvision
        out["torchvision"] = torchvision.__version__
    except ImportError:
        pass
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        out["gpu"] = {"name": p.name, "memory_gib": round(p.total_memory / 2**30, 1),
                      "multiprocessors": p.multi_processor_count, "capability": f"{p.major}.{p.minor}"}
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                                  "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
            out["nvidia_smi"] = smi.stdout.strip()
            out["driver"] = smi.stdout.split(",")[1].strip() if smi.returncode == 0 and "," in smi.stdout else None
        except (OSError, subprocess.SubprocessError) as e:
            out["nvidia_smi"] = f"unavailable: {e}"
    return out


def matmul_rate(device, n: int, dtype, tf32: bool) -> dict[str, Any]:
    import torch
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        g = torch.Generator(device=device).manual_seed(0)
        a = torch.randn(n, n, device=device, dtype=dtype, generator=g)
        b = torch.randn(n, n, device=device, dtype=dtype, generator=g)
        for _ in range(3):
            a @ b
        _sync(device)
        reps, t0 = 0, time.perf_counter()
        while reps < 10 and (reps < 2 or time.perf_counter() - t0 < 1.0):
            a @ b
            reps += 1
            _sync(device)
        dt = time.perf_counter() - t0
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    return {"n": n, "dtype": str(dtype), "tf32": tf32, "reps": reps, "tflops": round(2 * n**3 * reps / dt / 1e12, 2)}


# ================================================================================================= part a
ALL_METHODS = ("natural", "pgd_at", "fast_at", "kd", "ard", "mixacm", "trades", "mart", "awp", "fat", "free_at")
FAMILIES = ("wrn-16-1", "gowal-wrn-16-1", "preact-resnet18", "resnet50")


def part_a(P: Part, S: dict[str, Any], device, work: Path) -> None:
    student, teacher, batch = S["a_small"]
    P.item("loss_dtypes_autocast", lambda: loss_dtypes(device, student, teacher, batch), need_s=10)
    P.item("awp_autocast", lambda: awp_under_autocast(device, student, batch), need_s=5)
    P.item("host_syncs_per_step", lambda: host_syncs(device, student, teacher, batch), need_s=10)
    P.item("channels_last_every_conv", lambda: channels_last_convs(device, S), need_s=10)
    P.item("bit_exact_resume", lambda: bit_exact_resume(device, work / "resume"), need_s=15)
    P.item("evaluator_selfchecks_cudnn_benchmark", lambda: evaluator_checks(device, work / "eval"), need_s=10)
    tier_cells(P, S, device, work / "tier")


def loss_dtypes(device, student: str, teacher: str, batch: int) -> dict[str, Any]:
    """Every method's step under bf16 autocast: the loss and each logged term should be float32 (a bf16 loss loses
    the small terms), finite, and the parameters' gradients float32."""
    import torch
    rows, bad = {}, []
    for m in ALL_METHODS:
        st = TrainerStep(m, student, teacher, batch=batch, device=device)
        xb, yb = st._batch()
        with _check_autocast(device):
            out = st.step_fn(st.ctx, xb, yb)
        out.loss.backward()
        grads = {str(p.grad.dtype) for p in st.student.parameters() if p.grad is not None}
        row = {"loss": str(out.loss.dtype), "terms": {k: str(v.dtype) for k, v in out.terms.items()},
               "logits": str(out.logits.dtype), "finite": bool(torch.isfinite(out.loss).item()),
               "grad_dtypes": sorted(grads)}
        rows[m] = row
        if row["loss"] != "torch.float32" or not row["finite"] or grads != {"torch.float32"}:
            bad.append(m)
        low = [k for k, d in row["terms"].items() if d != "torch.float32"]
        if low:
            row["low_precision_terms"] = low
    return {"status": "fail" if bad else "ok", "failing": bad, "methods": rows,
            "terms_not_float32": {m: r["low_precision_terms"] for m, r in rows.items() if "low_precision_terms" in r}}


def awp_under_autocast(device, student: str, batch: int) -> dict[str, Any]:
    """AWP with gamma 5e-2 against gamma 0 from the same weights, batch and seeds: under autocast the loss and the
    gradients must differ (the weight perturbation must reach the training forward)."""
    import torch
    res = {}
    for label, ac in (("autocast", _check_autocast), ("fp32", lambda d: contextlib.nullcontext())):
        out = {}
        for gamma in (5e-2, 0.0):
            st = TrainerStep("awp", student, None, batch=batch, device=device, over={"awp_gamma": gamma}, seed=0)
            xb, yb = st._batch()
            with ac(device):
                o = st.step_fn(st.ctx, xb, yb)
            o.loss.backward()
            out[gamma] = (o.loss.detach().float().cpu(),
                          torch.cat([p.grad.detach().float().flatten().cpu() for p in st.student.parameters()
                                     if p.grad is not None]))
        same_loss = bool(torch.equal(out[5e-2][0], out[0.0][0]))
        same_grad = bool(torch.equal(out[5e-2][1], out[0.0][1]))
        res[label] = {"loss_gamma_5e-2": float(out[5e-2][0]), "loss_gamma_0": float(out[0.0][0]),
                      "identical_loss": same_loss, "identical_gradients": same_grad}
    broken = res["autocast"]["identical_loss"] and res["autocast"]["identical_gradients"]
    return {"status": "fail" if broken else "ok", **res,
            "verdict": "AWP does nothing under autocast (perturbed and unperturbed steps are identical)" if broken
            else "the weight perturbation changes the step under autocast"}


def host_syncs(device, student: str, teacher: str, batch: int) -> dict[str, Any]:
    """Host syncs per training step of every method (the trainer's loop body; the windowed loss read every
    log_every steps is outside the counted steps)."""
    if device.type != "cuda":
        return {"status": "skipped", "reason": "no CUDA: torch.cuda.set_sync_debug_mode needs a GPU"}
    rows = {}
    for m in ALL_METHODS:
        st = TrainerStep(m, student, teacher, batch=batch, device=device)
        st.steps(2)  # warm-up: cudnn autotuning, lazy inits
        out: dict[str, Any] = {}
        n = 3
        with count_syncs(device, out):
            st.steps(n)
        rows[m] = {"per_step": out["syncs"] / n, "where": out["where"]}
    worst = max(r["per_step"] for r in rows.values())
    return {"status": "ok" if worst == 0 else "fail", "methods": rows,
            "verdict": "no host sync inside a training step" if worst == 0 else
            f"up to {worst:g} host syncs per step (locations in 'where')"}


def channels_last_convs(device, S: dict[str, Any]) -> dict[str, Any]:
    """Every convolution's input and weight in channels_last: a PGD-7 AT step (attack and training forward) and a
    MixACM step (teacher too) built as the trainer builds them, and an evaluation with the evaluator's defaults, for
    every model family."""
    import torch
    from torch import nn

    from mixacm.evaluate import evaluate
    rows, bad = {}, []
    for fam in FAMILIES:
        side = S["family_side"].get(fam, 32)
        seen: list[tuple[str, bool, bool]] = []

        def hook(mod, inp, name=fam):
            x = inp[0]
            meaningful = x.dim() == 4 and x.shape[1] > 1 and x.shape[2] * x.shape[3] > 1
            if meaningful:
                seen.append((type(mod).__name__, x.is_contiguous(memory_format=torch.channels_last),
                             mod.weight.is_contiguous(memory_format=torch.channels_last)))

        row = {}
        for m in ("pgd_at", "mixacm"):
            st = TrainerStep(m, fam, fam, batch=2, device=device, side=side, over={"attack_steps": 1})
            hooks = [c.register_forward_pre_hook(hook) for mod in (st.student, st.teacher) if mod is not None
                     for c in mod.modules() if isinstance(c, nn.Conv2d)]
            seen.clear()
            st.steps(1)
            for h in hooks:
                h.remove()
            row[m] = {"convs": len(seen), "inputs_not_cl": sum(not a for _, a, _ in seen),
                      "weights_not_cl": sum(not w for _, _, w in seen)}
        model = st.student.eval()
        hooks = [c.register_forward_pre_hook(hook) for c in model.modules() if isinstance(c, nn.Conv2d)]
        seen.clear()
        x = torch.rand(2, 3, side, side)
        with torch.no_grad():
            y = model(x.to(device).contiguous(memory_format=torch.channels_last)).argmax(1).cpu()
        model.to(memory_format=torch.contiguous_format)  # as a checkpoint loads: the evaluator converts it
        seen.clear()
        evaluate(model, x, y, attacks=["fgsm", "pgd2"], eps=8 / 255, device=device, progress=False,
                 channels_last=True if device.type != "cuda" else None)
        for h in hooks:
            h.remove()
        row["evaluate"] = {"convs": len(seen), "inputs_not_cl": sum(not a for _, a, _ in seen),
                           "weights_not_cl": sum(not w for _, _, w in seen)}
        rows[f"{fam}@{side}px"] = row
        if any(r["inputs_not_cl"] or r["weights_not_cl"] for r in row.values()):
            bad.append(fam)
    return {"status": "fail" if bad else "ok", "failing": bad, "families": rows}


def bit_exact_resume(device, work: Path) -> dict[str, Any]:
    """Trained straight vs crashed after epoch 1 and resumed, deterministic=true, on this device: identical weights
    (PGD-7 AT and MixACM with a trained teacher), as tests/mixacm/test_train.py checks on CPU."""
    import shutil

    import torch

    import mixacm.train as TR
    from mixacm import checkpoint as C
    from mixacm.config import load_config
    if work.exists():
        shutil.rmtree(work)
    tiny = dict(dataset="digits", model="wrn-10-1", augment="crop_flip", data_fraction=0.25, val_fraction=0.2,
                batch_size=32, epochs=2, max_steps_per_epoch=3, val_n=40, progress=False, eval_batch_size=128,
                lr=0.05, eps=0.1, attack_step=0.05, attack_steps=2, teacher_expected_acc=0.0, deterministic=True,
                device=device.type)
    teacher = TR.train(load_config(None, {**tiny, "method": "natural", "max_steps_per_epoch": 5}),
                       work / "teacher")["checkpoint"]
    rows, bad = {}, []
    for method in ("pgd_at", "mixacm"):
        cfg = load_config(None, {**tiny, "method": method, "teacher": teacher})
        TR.train(cfg, work / method / "straight")
        real = TR.save_checkpoint

        def crash(payload, path, real=real):
            out = real(payload, path)
            if path.name == "last.pt" and payload["epoch"] == 1:
                raise KeyboardInterrupt("simulated crash after epoch 1")
            return out

        TR.save_checkpoint = crash
        try:
            TR.train(cfg, work / method / "resumed")
        except KeyboardInterrupt:
            pass
        finally:
            TR.save_checkpoint = real
        TR.train(cfg, work / method / "resumed", resume=True)
        a = C.load_checkpoint(work / method / "straight" / "last.pt")
        b = C.load_checkpoint(work / method / "resumed" / "last.pt")
        diff = [k for k, v in a["model_state"].items() if not torch.equal(v, b["model_state"][k])]
        rows[method] = {"epochs": [a["epoch"], b["epoch"]], "tensors": len(a["model_state"]),
                        "differing": diff[:10], "n_differing": len(diff)}
        if diff or a["epoch"] != b["epoch"]:
            bad.append(method)
    return {"status": "fail" if bad else "ok", "failing": bad, "methods": rows, "device": str(device)}


# The self-checks that test the evaluator itself (and may change with cudnn.benchmark, channels_last or frozen
# parameters); the others report a property of the model evaluated (gradient masking, monotonicity in steps, a model
# that wants normalised inputs, AutoAttack's flags), which the item records but does not fail on.
EVALUATOR_CHECKS = ("inputs_in_unit_range", "eval_mode", "outputs_are_logits", "deterministic", "nonzero_gradients")


def evaluator_verdict(checks: dict[str, str], restored: bool, attacks: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    """("ok" | "fail", the failing names): every evaluator check and every attack's adversarial_valid ran and passed,
    and the parameters' requires_grad flags came back as they were."""
    needed = list(EVALUATOR_CHECKS) + [f"adversarial_valid:{a}" for a in attacks]
    needed += [k for k in checks if k.startswith("adversarial_valid:") and k not in needed]
    failing = [k for k in needed if checks.get(k) != "ok"]
    if not restored:
        failing.append("requires_grad_restored")
    return ("fail" if failing else "ok"), failing


def evaluator_checks(device, work: Path) -> dict[str, Any]:
    """A model trained on digits, evaluated with cudnn.benchmark off and then on (the gpu tier's setting): every
    self-check's status in both, the parameters' requires_grad restored, the physical batch and layout used. The item
    fails on the evaluator's own checks (``evaluator_verdict``); what benchmark mode changed is reported."""
    import shutil

    import torch

    import mixacm.train as TR
    from mixacm.config import load_config
    from mixacm.data import load_split
    from mixacm.evaluate import evaluate
    if work.exists():
        shutil.rmtree(work)
    s = TR.train(load_config(None, dict(dataset="digits", model="wrn-10-1", method="natural", epochs=3,
                                        batch_size=64, lr=0.05, augment="none", val_fraction=0.15, val_n=100,
                                        progress=False, deterministic=False, device=device.type,
                                        select_metric="last")), work / "run")
    model = TR.load_checkpoint_model(s["checkpoint"]).to(device)
    x, y = load_split("digits", "test")
    attacks = ["fgsm", "pgd5", "pgd10", "cw10"] + (["apgd-ce", "square"] if have("pyautoattack") else [])
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    before = torch.backends.cudnn.benchmark
    runs = {}
    try:
        for mode in (False, True):
            torch.backends.cudnn.benchmark = mode
            runs[mode] = evaluate(model, x, y, attacks=attacks, eps=0.1, n=200, device=device, progress=False,
                                  aa_options={"square_queries": 100, "n_iter": 20})
    finally:
        torch.backends.cudnn.benchmark = before
    res = runs[True]
    restored = flags == {n: p.requires_grad for n, p in model.named_parameters()}
    checks = {c["name"]: c["status"] for c in res["self_checks"]}
    checks_off = {c["name"]: c["status"] for c in runs[False]["self_checks"]}
    status, failing = evaluator_verdict(checks, restored, tuple(attacks))
    robust = {k: a["robust_accuracy"] for k, a in res["attacks"].items()}
    robust_off = {k: a["robust_accuracy"] for k, a in runs[False]["attacks"].items()}
    return {"status": status, "failing": failing, "self_checks": checks,
            "model_flags": [k for k, v in checks.items() if v == "flag" and k not in failing],
            "changed_by_benchmark": {k: [checks_off.get(k), v] for k, v in checks.items() if checks_off.get(k) != v},
            "max_robust_change_by_benchmark": max(abs(robust[k] - robust_off[k]) for k in robust),
            "requires_grad_restored": restored, "runtime": res.get("runtime"),
            "clean": res["clean"]["accuracy"], "robust": robust,
            "attack_seconds": {k: round(a["attack_seconds"], 2) for k, a in res["attacks"].items()},
            "aa_available": have("pyautoattack")}


# ---------------------------------------------------------------------------------- part a: the tier's cells
def _features(spec: dict[str, Any]) -> set[str]:
    t = spec["train"]
    from mixacm.models import wrn_depth_width
    model = t["model"]
    fam = ("gowal-wrn" if model.startswith("gowal-") else "wrn") if wrn_depth_width(model) else model
    f = {f"method:{t['method']}", f"family:{fam}", f"dataset:{t['dataset']}"}
    if t.get("teacher"):
        f.add(f"teacher:{t['teacher']}")
    if spec["eval"]["attack"] != "clean":
        f.add(f"attack:{spec['eval']['attack']}")
    return f


def select_cells(all_specs: list[dict[str, Any]], *, aa: bool, max_groups: int | None, max_flops: float | None,
                 imagenet: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Greedy cover of (method, model family, data set, teacher, attack) by cells, cheapest groups first among
    equals; returns (selected cells in group order, cells left out because their package is missing)."""
    from verification import costs, plans
    cand = [s for s in all_specs if not s["blocked"] and s["kind"] == "train_eval"]
    if not imagenet:
        cand = [s for s in cand if s["train"]["dataset"] != "imagenet"]
    missing = []
    aa_names = {"autoattack", "apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square"}
    if not aa:
        missing = [s for s in cand if s["eval"]["attack"] in aa_names]
        cand = [s for s in cand if s["eval"]["attack"] not in aa_names]

    def flops(s):
        ds = s["train"]["dataset"]
        return costs.forward_flops(s["train"]["model"], 1000 if ds == "imagenet" else 100 if ds == "cifar100" else 10,
                                   costs.SIDE.get(ds, 32))

    if max_flops is not None:
        cand = [s for s in cand if flops(s) <= max_flops]
    covered: set[str] = set()
    chosen: list[dict[str, Any]] = []
    groups: list[str] = []
    while True:
        best, gain = None, 0
        for s in cand:
            new = len(_features(s) - covered)
            key = plans.gpu_run_key(s)
            cost = 0.0 if key in groups else flops(s)
            if new > gain or (new == gain and new > 0 and best is not None and cost < best[1]):
                best, gain = (s, cost), new
        if best is None:
            break
        s = best[0]
        key = plans.gpu_run_key(s)
        if key not in groups:
            if max_groups is not None and len(groups) >= max_groups:
                cand = [c for c in cand if plans.gpu_run_key(c) in groups]
                continue
            groups.append(key)
        chosen.append(s)
        covered |= _features(s)
        cand = [c for c in cand if c is not s]
    order = {k: i for i, k in enumerate(groups)}
    chosen.sort(key=lambda s: order[plans.gpu_run_key(s)])
    return chosen, missing


def tier_cells(P: Part, S: dict[str, Any], device, work: Path) -> None:
    """The gpu tier's own cells through gpu_plan + run_plan at rehearsal amounts, one training group per item."""
    import copy

    from verification import rehearsal
    root = work.resolve()
    rehearsal.apply(rehearsal.env_for(root))  # before the specs are built: the env teachers decide what runs
    from verification import compare, paper_data, plans, schema, specs
    from verification.runner import run_plan

    rb, aa = have_robustbench(), have("pyautoattack")
    imagenet = not P.smoke
    chosen, missing = select_cells(specs.all_specs(), aa=aa, max_groups=S["a_groups"], max_flops=S["a_cell_flops"],
                                   imagenet=imagenet)
    names = sorted({s["train"]["teacher"].split(":", 1)[1] for s in chosen
                    if (s["train"].get("teacher") or "").startswith("robustbench:")})
    info: dict[str, Any] = {"robustbench": rb, "pyautoattack": aa, "cells_selected": len(chosen),
                            "cells_not_available": [s["id"] for s in missing][:50],
                            "n_cells_not_available": len(missing), "features": sorted(set().union(
                                *(_features(s) for s in chosen)))}
    P.data["tier"] = info
    P.item("tier_prepare", lambda: {"env": rehearsal.prepare(root, names if rb else [], imagenet=imagenet)},
           need_s=5)
    substitutes: dict[str, str] = {}
    if not rb:
        from mixacm.teachers import ROBUSTBENCH_TEACHERS
        for n in names:
            meta = ROBUSTBENCH_TEACHERS[n]
            path = rehearsal.teacher_cache(root) / f"standin-{n}.pt"
            if not path.is_file():
                rehearsal._random_teacher(path, meta.arch, meta.num_classes, seed=0)
            substitutes[f"robustbench:{n}"] = str(path)
        P.item("robustbench_teacher_load", lambda: (_ for _ in ()).throw(Unavailable(
            "robustbench is not installed on the device (it needs gdown, bs4, geotorch and setuptools' "
            "pkg_resources); its teachers are random-weight checkpoints of the same architecture here")))
    if missing:
        P.data["items"].append({"name": "autoattack_cells", "status": NOT_AVAILABLE,
                                "reason": f"pyautoattack is not importable: {len(missing)} AutoAttack cells left out"})
        P.save()
    groups: dict[str, list[dict[str, Any]]] = {}
    for s in chosen:
        groups.setdefault(plans.gpu_run_key(s), []).append(s)
    amounts = rehearsal.amounts()
    for key, cells in groups.items():
        def run_group(key=key, cells=cells) -> dict[str, Any]:
            sel = []
            for s in cells:
                s = copy.deepcopy(s)
                if s["train"].get("teacher") in substitutes:
                    s["train"]["teacher"] = substitutes[s["train"]["teacher"]]
                if not aa:
                    s["eval"]["attacks"] = [a for a in s["eval"]["attacks"]
                                            if a not in ("autoattack", "apgd-ce", "apgd-dlr", "apgd-t", "fab",
                                                         "fab-t", "square")]
                sel.append(s)
            plan = plans.gpu_plan(sel, rehearsal=amounts, teacher_cache=rehearsal.teacher_cache(root))
            results = run_plan(plan, root / "out" / key)
            recs = {schema.cell_key(r): r for r in results["results"]}
            out = []
            for s in cells:
                rec = recs.get(schema.cell_key(s))
                cmp = compare.compare(rec, paper_data.find_cell(s["table"], s["row"], s["column"])) if rec else None
                out.append({"id": s["id"], "value": rec["value"] if rec else None,
                            "comparison": cmp.message if cmp else "no record"})
            teacher = cells[0]["train"].get("teacher")
            return {"group": key, "method": cells[0]["train"]["method"], "model": cells[0]["train"]["model"],
                    "dataset": cells[0]["train"]["dataset"], "teacher": teacher,
                    "teacher_substituted": substitutes.get(teacher) is not None,
                    "attacks": list(plan.runs[0].attacks), "cells": out,
                    "device": results["provenance"].get("machine")}
        P.item(f"tier:{key}", run_group, need_s=8)


# ================================================================================================= part b
def part_b(P: Part, S: dict[str, Any], device, out: Path) -> None:
    import torch

    pre = _read(out / "pre.json")
    ceiling = _item(pre, "matmul_bf16").get("tflops")
    tf32 = _item(pre, "matmul_tf32").get("tflops")
    P.data.update(gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({device})",
                  bf16_ceiling_tflops=ceiling, tf32_ceiling_tflops=tf32, rows=[], eval_rows=[],
                  flops_source="verification.costs (train_passes x forward_flops)")
    for method, student, teacher, batch, side in S["b_rows"]:
        name = f"{method}-{student}" + (f"-t-{teacher}" if teacher else "") + f"-b{batch}" + (f"-{side}px" if side != 32 else "")

        def row(method=method, student=student, teacher=teacher, batch=batch, side=side) -> dict[str, Any]:
            r = throughput_row(device, S, method, student, teacher, batch, side, ceiling)
            P.data["rows"].append(r)
            return r
        P.item(name, row, need_s=6 if not P.smoke else 0)
    student, batches = S["b_eval"]
    for batch in batches:
        def erow(batch=batch) -> dict[str, Any]:
            r = eval_row(device, S, student, batch, tf32)
            P.data["eval_rows"].append(r)
            return r
        P.item(f"eval-pgd-{student}-b{batch}", erow, need_s=4 if not P.smoke else 0)


def throughput_row(device, S, method, student, teacher, batch, side, ceiling) -> dict[str, Any]:
    import torch

    from verification import costs
    k = 1000 if side == 224 else 10
    st = TrainerStep(method, student, teacher, batch=batch, device=device, side=side, k=k,
                     n_images=batch * (1 if side == 224 else 4))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    st.steps(S["b_warmup_steps"])  # warm-up (cudnn autotuning)
    _sync(device)
    t0, n = time.perf_counter(), 0
    while n < S["b_max_steps"] and (n < 2 or time.perf_counter() - t0 < S["b_row_s"]):
        st.steps(1)
        n += 1
        if device.type == "cuda" and n in (1, 2):
            _sync(device)
    _sync(device)
    dt = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    syncs: dict[str, Any] = {}
    with count_syncs(device, syncs):
        st.steps(2)
    f_s = costs.forward_flops(student, k, side)
    f_t = costs.forward_flops(teacher, k, side) if teacher and method in ("mixacm", "kd", "ard") else 0.0
    p_s, p_t = costs.train_passes(method, st.cfg.attack_steps, 1)
    per_image = p_s * f_s + p_t * f_t
    ips = batch * n / dt
    achieved = per_image * ips / 1e12
    from mixacm.train import training_memory_bytes
    est = training_memory_bytes(st.cfg, batch)
    return {"method": method, "student": student, "teacher": teacher, "batch": batch, "side": side,
            "steps_timed": n, "seconds": round(dt, 3), "step_s": round(dt / n, 5), "images_per_s": round(ips, 1),
            "flops_per_image": per_image, "achieved_tflops": round(achieved, 2),
            "of_bf16_ceiling": round(achieved / ceiling, 3) if ceiling else None,
            "peak_memory_gib": round(peak, 2) if peak is not None else None,
            "estimated_memory_gib": round(est / 2**30, 2) if est else None,
            "host_syncs_per_step": syncs["syncs"] / 2 if syncs.get("syncs") is not None else None,
            "sync_locations": syncs.get("where"), "attack_steps": st.cfg.attack_steps,
            "free_replays": st.cfg.free_replays, "status": "ok"}




def eval_row(device, S, student: str, batch: int, tf32_ceiling) -> dict[str, Any]:
    """PGD as the evaluator runs it (eval mode, frozen parameters, channels_last on CUDA, fp32 with cuDNN's TF32):
    seconds per iteration per image at one physical batch."""
    import torch

    from mixacm.attacks import pgd_linf
    from mixacm.normalization import STATS
    from mixacm.models import build_model
    from verification import costs
    mean, std = STATS["cifar10"]
    model = build_model(student, num_classes=10, mean=mean, std=std).to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    cl = device.type == "cuda"
    if cl:
        model = model.to(memory_format=torch.channels_last)
    x = torch.rand(batch, 3, 32, 32, device=device)
    x = x.contiguous(memory_format=torch.channels_last) if cl else x
    y = torch.randint(0, 10, (batch,), device=device)
    steps = S["b_eval_steps"]
    pgd_linf(model, x, y, eps=8 / 255, step_size=2 / 255, steps=2)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    pgd_linf(model, x, y, eps=8 / 255, step_size=2 / 255, steps=steps)
    _sync(device)
    dt = time.perf_counter() - t0
    per_iter_image = dt / steps / batch
    f = costs.forward_flops(student, 10, 32)
    achieved = 2 * f / per_iter_image / 1e12
    return {"kind": "pgd", "student": student, "batch": batch, "steps": steps, "seconds": round(dt, 3),
            "s_per_iteration_image": per_iter_image, "achieved_tflops": round(achieved, 2),
            "of_tf32_ceiling": round(achieved / tf32_ceiling, 3) if tf32_ceiling else None,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32, "channels_last": cl, "status": "ok"}


# ================================================================================================= part c
def part_c(P: Part, S: dict[str, Any], device, out: Path, work: Path, pack: Path | None) -> None:
    pack = pack or DEVICE_DIR / "cifar10-pack.npz"
    if not pack.is_file():
        P.item("pack", lambda: {"status": "skipped", "reason": f"no pack at {pack}: build it with python -m "
                                                              f"verification.device_pack and carry build/device"})
        return
    P.item("decode", lambda: decode_pack(pack), need_s=5)
    b = _read(out / "b.json")
    sizing = P.item("sizing", lambda: size_mini(S, b, device, P.left()))
    if sizing["status"] != "ok":
        return
    P.item("mini_reproduction", lambda: mini_reproduction(P, S, sizing, device, work, pack), need_s=20)


def decode_pack(pack: Path) -> dict[str, Any]:
    import torch

    from mixacm.data import load_split, pack_meta
    t0 = time.time()
    x, y = load_split("cifar10-pack", "train", pack)
    xt, yt = load_split("cifar10-pack", "test", pack)
    meta = pack_meta(pack)
    return {"pack_mib": round(pack.stat().st_size / 2**20, 1), "train": len(y), "test": len(yt),
            "decode_s": round(time.time() - t0, 2), "threads": min(16, os.cpu_count() or 1),
            "test_per_class": torch.bincount(yt).tolist(), "source": meta.get("source"),
            "test_seed": meta.get("seed")}


def _rate(b: dict[str, Any], method: str, fallback: float) -> float:
    rows = [r for r in b.get("rows", []) if r.get("status") == "ok" and r.get("batch") == 128
            and r.get("student") == "gowal-wrn-34-10"]
    by = {r["method"]: 1e12 * r["achieved_tflops"] for r in rows if r.get("achieved_tflops")}
    if method in by:
        return by[method]
    return sorted(by.values())[len(by) // 2] if by else fallback


SMALL_MODEL_EFFICIENCY = 0.35  # a WRN-16 runs at about this share of WRN-34-10's achieved rate (assumption)


def size_mini(S: dict[str, Any], b: dict[str, Any], device, left: float) -> dict[str, Any]:
    """Epochs of the teacher and of the students from part b's measured rates (or, without them, an assumed
    rate) so that training, evaluation and overheads fit the part's remaining time."""
    from verification import costs
    if S["c_epochs"] is not None:
        return {"teacher_epochs": S["c_epochs"][0], "student_epochs": S["c_epochs"][1], "source": "smoke amounts"}
    fallback = 100e12 if device.type == "cuda" else 2e11
    n_train = 50000 * 0.98
    f_t = costs.forward_flops(S["c_teacher"], 10, 32)
    f_s = costs.forward_flops(S["c_student"], 10, 32)
    eff = SMALL_MODEL_EFFICIENCY

    def epoch_s(method: str, f: float, teacher_f: float = 0.0) -> float:
        p_s, p_t = costs.train_passes(method, 7)
        return n_train * (p_s * f + p_t * teacher_f) / (_rate(b, method, fallback) * eff)

    e_teacher = epoch_s("fast_at", f_t)
    e_students = epoch_s("mixacm", f_s, f_t) + epoch_s("pgd_at", f_s) + epoch_s("natural", f_s)
    evals = [r for r in b.get("eval_rows", []) if r.get("status") == "ok" and r.get("achieved_tflops")]
    eval_rate = max((1e12 * r["achieved_tflops"] for r in evals), default=fallback / 3) * eff
    eval_s = 4 * 2000 * (1 + costs.attack_cost("pgd20", 10) + costs.attack_cost("fgsm", 10)) * f_s * 2 / eval_rate
    overhead = 25.0 + 4 * 4.0  # decode, data to the device, model builds, per-epoch checkpoints and validation
    budget = max(0.0, left - eval_s - overhead - 15.0)
    t_ep = max(1, min(15, int(0.35 * budget / e_teacher)))
    s_ep = max(1, min(30, int((budget - t_ep * e_teacher) / e_students)))
    return {"teacher_epochs": t_ep, "student_epochs": s_ep, "estimated_teacher_epoch_s": round(e_teacher, 2),
            "estimated_student_epochs_s": round(e_students, 2), "estimated_eval_s": round(eval_s, 1),
            "budget_s": round(budget, 1), "rates_from": "part b" if b.get("rows") else "assumed (part b missing)",
            "small_model_efficiency": eff}


def mini_reproduction(P: Part, S, sizing, device, work: Path, pack: Path) -> dict[str, Any]:
    """Fast-AT teacher, then MixACM / PGD-7 AT / natural students at equal epochs; FGSM + PGD-20 on the packed test
    images with per-image masks; claims through verification/claims.py (run_plan does both)."""
    import shutil

    from verification.runner import CellSpec, Plan, RunSpec, run_plan
    if work.exists():
        shutil.rmtree(work)
    t_ep, s_ep = sizing["teacher_epochs"], sizing["student_epochs"]
    base = {"dataset": "cifar10-pack", "epochs": s_ep, "batch_size": S["c_batch"], "select_metric": "last",
            "val_fraction": 0.02, "val_n": S["c_val_n"], "progress": False, "deterministic": False,
            "teacher_gate_tolerance": 0.15, "max_steps_per_epoch": S["c_max_steps"]}
    if P.smoke:
        base["teacher_expected_acc"] = 0.0
    student = S["c_student"]
    runs = [RunSpec("teacher", {"method": "fast_at", "model": S["c_teacher"], "epochs": t_ep}, seeded=False),
            RunSpec("mixacm", {"method": "mixacm", "model": student, "alpha_acm_reference": "wrn-34-10"}, "teacher"),
            RunSpec("pgd_at", {"method": "pgd_at", "model": student}),
            RunSpec("natural", {"method": "natural", "model": student})]
    cells = []
    for key, row in (("natural", "CIFAR-10 / Natural"), ("mixacm", "CIFAR-10 / Ours"), ("pgd_at", "CIFAR-10 / PGD7-AT")):
        cells += [CellSpec("table3", row, "Acc.", key, "clean"), CellSpec("table3", row, "PGD 20", key, "pgd20")]
    cells += [CellSpec("bench", row, "step_time_s", key, "step_time_s")
              for key, row in (("natural", "natural"), ("mixacm", "mixacm"), ("pgd_at", "pgd7_at"))]
    scale = (f"device check mini-reproduction: CIFAR-10 JPEG q75 pack; Fast-AT {S['c_teacher']} teacher ({t_ep} "
             f"epochs) -> {student} students ({s_ep} epochs); eps 8/255; FGSM and PGD-20 on the packed test images")
    plan = Plan(name="device-mini", tier="gpu", base=base, runs=runs, cells=cells, seeds=(0,), eval_n=None,
                scale=scale, data_root=str(pack), eval_max_iterations=S["c_eval_iterations"])
    t0 = time.time()
    results = run_plan(plan, work)
    claims = json.loads((work / "claims.json").read_text())
    evals = {}
    for f in sorted((work / "evals").glob("*.json")):
        e = json.loads(f.read_text())
        evals[f.stem] = {"clean": e["clean"]["accuracy"], **{k: a["robust_accuracy"] for k, a in e["attacks"].items()},
                         "n": e["n_eval"], "wall_s": round(e["wall_time_s"], 1),
                         "flagged": [c["name"] for c in e["self_checks"] if c["status"] == "flag"]}
    P.data["results"] = results
    P.data["claims"] = claims
    return {"seconds_train_eval": round(time.time() - t0, 1), "teacher_epochs": t_ep, "student_epochs": s_ep,
            "evaluations": evals, "claims": [{"claim": c["id"], "verdict": c["verdict"]} for c in claims],
            "train_wall_time_s": results["provenance"].get("train_wall_time_s")}


# ============================================================================================ orchestration
def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _item(part: dict[str, Any], name: str) -> dict[str, Any]:
    return next((i for i in part.get("items", []) if i.get("name") == name), {})


def run_part(name: str, out: Path, deadline: float, smoke: bool, work: Path, pack: Path | None,
             device_name: str | None) -> int:
    import torch
    if smoke:
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    device = _device(smoke, device_name)
    S = sizes(smoke)
    P = Part(name, out, deadline, smoke)
    P.data["device"] = str(device)
    try:
        if name == "pre":
            part_pre(P, S, device)
        elif name == "a":
            part_a(P, S, device, work / "a")
        elif name == "b":
            part_b(P, S, device, out)
        elif name == "c":
            part_c(P, S, device, out, work / "c", pack)
    except Exception as e:  # noqa: BLE001 - the part's JSON says what broke
        P.data["error"] = f"{type(e).__name__}: {e}"
        P.data["traceback"] = traceback.format_exc()[-3000:]
    P.finish()
    return 0


def orchestrate(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or (out / "_work" if args.smoke else Path("/tmp") / "mixacm-device-check"))
    t0 = time.time()
    parts = [p for p in (args.parts.split(",") if args.parts else PARTS)]
    summary: dict[str, Any] = {"budget_s": args.budget, "smoke": args.smoke, "started": time.strftime(
        "%Y-%m-%dT%H:%M:%S%z"), "commit": os.environ.get("MIXACM_COMMIT"), "parts": {}}
    cum = 0.0
    for name in PARTS:
        cum += SHARES[name]
        if name not in parts:
            continue
        deadline = t0 + args.budget * cum
        left = deadline - time.time()
        if left < 5:
            summary["parts"][name] = {"status": "skipped", "reason": f"no time left ({left:.0f} s)"}
            (out / f"{name}.json").write_text(json.dumps({"part": name, **summary["parts"][name]}, indent=1))
            continue
        cmd = [sys.executable, "-m", "verification.device_check", "--part", name, "--out", str(out),
               "--deadline", str(deadline), "--work", str(work)]
        if args.smoke:
            cmd.append("--smoke")
        if args.pack:
            cmd += ["--pack", args.pack]
        if args.device:
            cmd += ["--device", args.device]
        print(f"[device_check] part {name}: deadline in {left:.0f} s", flush=True)
        t = time.time()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, timeout=left + GRACE_S)
            rc, killed = proc.returncode, False
        except subprocess.TimeoutExpired:
            rc, killed = None, True
        data = _read(out / f"{name}.json")
        status = data.get("status", "missing")
        if killed:
            status = "killed at its deadline"
            data.update(status=status)
            (out / f"{name}.json").write_text(json.dumps(data, indent=1, default=str))
        elif rc != 0 and status in ("running", "missing"):
            status = f"crashed (exit {rc})"
            data.update(part=name, status=status)
            (out / f"{name}.json").write_text(json.dumps(data, indent=1, default=str))
        summary["parts"][name] = {"status": status, "seconds": round(time.time() - t, 1), "exit": rc,
                                  "items": {i["name"]: i["status"] for i in data.get("items", [])}}
    summary["seconds"] = round(time.time() - t0, 1)
    pre = _read(out / "pre.json")
    v = _item(pre, "versions")
    summary["provenance"] = {k: v.get(k) for k in ("python", "torch", "cuda", "cudnn", "driver", "gpu", "git",
                                                    "torchvision")}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(render_summary(summary, out), flush=True)
    return 0


def render_summary(summary: dict[str, Any], out: Path) -> str:
    lines = [f"device check: {summary['seconds']} s of a {summary['budget_s']} s budget"
             f"{' (smoke)' if summary['smoke'] else ''}; JSON in {out}"]
    prov = summary.get("provenance") or {}
    gpu = (prov.get("gpu") or {}).get("name") if isinstance(prov.get("gpu"), dict) else None
    lines.append(f"  torch {prov.get('torch')} cuda {prov.get('cuda')} driver {prov.get('driver')} gpu {gpu} "
                 f"commit {(prov.get('git') or {}).get('commit')}")
    for name, p in summary["parts"].items():
        items = p.get("items") or {}
        counts = Counter(items.values())
        lines.append(f"  part {name}: {p['status']} ({p.get('seconds', 0)} s; "
                     + ", ".join(f"{n} {s}" for s, n in counts.items()) + ")")
        for item, st in items.items():
            if st not in ("ok",):
                lines.append(f"      {item}: {st}")
    b = _read(out / "b.json")
    for r in b.get("rows", []):
        lines.append(f"  b {r['method']:<8} {r['student']:<16} {str(r.get('teacher') or ''):<16} b{r['batch']:<4} "
                     f"{r['images_per_s']:>9.1f} img/s {r['achieved_tflops']:>7.2f} TFLOP/s "
                     f"peak {r.get('peak_memory_gib')} GiB syncs/step {r.get('host_syncs_per_step')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m verification.device_check",
                                description="the first-run GPU check (parts pre, a, b, c)")
    p.add_argument("--out", required=True, help="folder for pre.json, a.json, b.json, c.json, summary.json")
    p.add_argument("--budget", type=float, default=420.0, help="seconds for all parts together")
    p.add_argument("--smoke", action="store_true", help="every part at toy size on the CPU (same code)")
    p.add_argument("--parts", default=None, help="comma-separated subset of pre,a,b,c (a rerun of one part)")
    p.add_argument("--pack", default=None, help="the CIFAR-10 pack (default build/device/cifar10-pack.npz)")
    p.add_argument("--work", default=None, help="scratch folder (default /tmp/mixacm-device-check; smoke: OUT/_work)")
    p.add_argument("--device", default=None, help="force a device (default: cuda when present, cpu with --smoke)")
    p.add_argument("--part", default=None, help=argparse.SUPPRESS)  # internal: run one part in this process
    p.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.part:
        return run_part(args.part, Path(args.out), args.deadline or time.time() + args.budget, args.smoke,
                        Path(args.work), Path(args.pack) if args.pack else None, args.device)
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
