"""`mixacm train CONFIG [--set key=value ...] [--run-dir D] [--resume]`: one engine for every method of the paper.

    train(cfg, run_dir, *, resume=False) -> summary dict (also written to RUN_DIR/summary.json)

Run directory: config.json (resolved config), meta.json (seed, git commit, machine), metrics.jsonl (one line per
epoch), last.pt (every epoch, atomic), best.pt (model selected on the held-out validation split; never the test
set), summary.json. ``--resume`` restores model, optimiser, scheduler, RNG states (torch, numpy, python, the
data/mixup/attack generator) and epoch, so that on CPU the final weights equal an uninterrupted run's bit for bit.

Data stay in memory as tensors (mixacm.data); batches are slices of a seeded permutation, augmented on the fly.
CUDA when present (bf16 autocast, channels_last), CPU otherwise; DDP through torchrun when WORLD_SIZE > 1
(each rank takes every world_size-th example of the shared permutation; only rank 0 writes).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import socket
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .checkpoint import (FORMAT, CheckpointError, is_package_checkpoint, load_checkpoint, load_state_strict,
                         save_checkpoint)
from .config import ConfigError, TrainConfig, check, load_config, to_dict
from .gitinfo import git_commit
from .methods import METHODS, NEEDS_TEACHER, StepContext, WithFeatures, check_method, uses_kd
from .teachers import FrozenTeacher, TeacherError, accuracy_gate, load_package_model, load_teacher_model


class DivergenceError(RuntimeError):
    """A loss term became NaN/Inf; training stopped and the last good checkpoint was kept."""


# ----------------------------------------------------------------------------------------------- environment
def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {"host": socket.gethostname(), "platform": platform.platform(),
                            "python": sys.version.split()[0], "torch": torch.__version__, "cpus": os.cpu_count(),
                            "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def _init_distributed() -> tuple[int, int, int]:
    """(rank, world_size, local_rank); initialises torch.distributed when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))


def _device(cfg: TrainConfig, local_rank: int) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("device='cuda' but CUDA is not available; use device=auto or device=cpu")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)


def _rng_state(gen: torch.Generator) -> dict[str, Any]:
    # plain types only: the checkpoint must load with weights_only=True
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py = random.getstate()
    state = {"torch": torch.get_rng_state(), "generator": gen.get_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached": float(cached)},
             "python": {"version": py[0], "state": list(py[1]), "gauss": py[2]}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["generator"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------------- data
def _load_data(cfg: TrainConfig) -> dict[str, Any]:
    """Train and validation tensors (both from the training split; the test split is never touched here)."""
    from . import data as D
    if cfg.data_root is not None and not Path(cfg.data_root).exists():
        raise ConfigError(f"data_root {cfg.data_root!r} does not exist; point data_root (or $MIXACM_CIFAR10_JPEG) "
                          f"at the dataset directory")
    try:
        k = D.num_classes(cfg.dataset)
        x, y = D.load_split(cfg.dataset, "train", cfg.data_root)
    except FileNotFoundError as e:
        raise ConfigError(f"dataset {cfg.dataset!r}: {str(e).splitlines()[0]}; set data_root=PATH") from None
    if cfg.data_fraction < 1:
        keep = D.stratified_subset(y, cfg.data_fraction, cfg.seed)
        x, y = x[keep], y[keep]
    tr, va = D.train_val_split(y, cfg.val_fraction, cfg.seed)
    out = {"x": x[tr], "y": y[tr], "x_val": x[va], "y_val": y[va], "num_classes": k, "in_channels": x.shape[1]}
    try:
        out["mean"], out["std"] = D.dataset_stats(cfg.dataset)
    except (ValueError, KeyError):
        out["mean"] = out["std"] = None
    if len(out["x"]) < cfg.batch_size:
        raise ConfigError(f"only {len(out['x'])} training examples but batch_size={cfg.batch_size}; "
                          f"lower batch_size or raise data_fraction")
    return out


# -------------------------------------------------------------------------------------------------- models
def _build_student(cfg: TrainConfig, data: dict[str, Any]) -> nn.Module:
    from .models import build_model
    kw: dict[str, Any] = {"in_channels": data["in_channels"], "feature_point": cfg.feature_point}
    if data["mean"] is not None and len(data["mean"]) == data["in_channels"]:
        kw.update(mean=data["mean"], std=data["std"])
    try:
        return build_model(cfg.model, num_classes=data["num_classes"], **kw)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _load_teacher(cfg: TrainConfig, data: dict[str, Any], device: torch.device, run_dir: Path
                  ) -> tuple[FrozenTeacher | None, dict[str, Any]]:
    if cfg.method not in NEEDS_TEACHER:
        return None, {}
    if cfg.teacher is None:
        raise ConfigError(f"method {cfg.method!r} needs a teacher; set teacher=robustbench:NAME, a checkpoint path, "
                          f"a run dir or config:PATH.toml")
    k = data["num_classes"]
    model, info = load_teacher_model(cfg.teacher, model_name=cfg.teacher_model,
                                     num_classes=cfg.teacher_num_classes or k, in_channels=data["in_channels"],
                                     cache_dir=Path(cfg.teacher_cache or run_dir.parent / "_teachers"))
    k_t = info["num_classes"]
    if k_t != k and uses_kd(cfg):
        fix = ("set use_kd=false (transfer setting of Table 5)" if cfg.method == "mixacm"
               else "use a teacher trained on the student's dataset")
        raise ConfigError(f"teacher has {k_t} classes but dataset {cfg.dataset!r} has {k}; KD compares logits, so "
                          f"{fix}")
    model = model.to(device)
    expected = cfg.teacher_expected_acc if cfg.teacher_expected_acc is not None else info["expected_acc"]
    info["expected_acc"] = expected
    if k_t == k:
        x_gate, y_gate = data["x_val"][: cfg.teacher_gate_n], data["y_val"][: cfg.teacher_gate_n]
        if len(x_gate) == 0:
            raise ConfigError("the teacher accuracy gate needs held-out examples; set val_fraction > 0")
        info["gate_acc"] = accuracy_gate(model, x_gate, y_gate, expected=expected, tolerance=cfg.teacher_gate_tolerance,
                                         num_classes=k, name=f"teacher {cfg.teacher!r}",
                                         batch_size=cfg.eval_batch_size, device=device)
        info["gate_n"] = len(x_gate)
    else:
        info["gate_acc"] = None
        info["gate"] = f"skipped: teacher has {k_t} classes, student data {k}"
    teacher = FrozenTeacher(model, feature_point=cfg.feature_point, name=cfg.teacher, num_classes=k_t)
    return teacher, info


def _distill_modules(cfg: TrainConfig, teacher: FrozenTeacher | None, student: nn.Module) -> nn.ModuleDict:
    """Learned pieces of the feature loss (trained with the student, saved in its checkpoint)."""
    from . import losses as L
    mods = nn.ModuleDict()
    if teacher is None or cfg.method != "mixacm" or not cfg.use_acm:
        return mods
    ct, cs = teacher.feature_channels, tuple(student.feature_channels)
    if cfg.feature_loss == "acm" and cfg.transform.endswith("_affine"):
        mods["affine"] = L.make_affine_maps(ct, cs, cfg.transform.split("_")[0])
    if cfg.feature_loss == "direct" and ct != cs:
        mods["adapters"] = L.make_feature_adapters(ct, cs)
    return mods


def _lr_factor(cfg: TrainConfig, steps_per_epoch: int):
    """Per-step LR multiplier: linear warm-up from warmup_start_lr to lr over warmup_epochs (Supp. A.1, ImageNet),
    then cosine annealing to 0 without restarts (Sec. 6 / Supp. A.1) or constant."""
    total = cfg.epochs * steps_per_epoch
    warm = int(round(cfg.warmup_epochs * steps_per_epoch))
    start = cfg.warmup_start_lr / cfg.lr

    def factor(step: int) -> float:
        if step < warm:
            return start + (1.0 - start) * step / warm
        if cfg.schedule == "constant":
            return 1.0
        t = (step - warm) / max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))

    return factor


# ---------------------------------------------------------------------------------------------- evaluation
def _validate(cfg: TrainConfig, model: nn.Module, data: dict[str, Any], device: torch.device) -> dict[str, float]:
    """Clean (and, for select_metric='val_rob', PGD) accuracy on the validation split; leaves the model in eval."""
    from .attacks import pgd_linf
    x, y = data["x_val"], data["y_val"]
    if cfg.val_n is not None:
        x, y = x[: cfg.val_n], y[: cfg.val_n]
    if len(x) == 0:
        return {}
    model.eval()
    out: dict[str, float] = {}
    correct = robust = 0
    gen = torch.Generator().manual_seed(cfg.seed + 12345)  # own generator: validation never moves training RNG
    for i in range(0, len(x), cfg.eval_batch_size):
        xb, yb = x[i:i + cfg.eval_batch_size].to(device), y[i:i + cfg.eval_batch_size].to(device)
        with torch.no_grad():
            correct += int((model(xb).argmax(1) == yb).sum())
        if cfg.select_metric == "val_rob":
            xa = pgd_linf(model, xb, yb, eps=cfg.eps, step_size=cfg.attack_step, steps=cfg.val_attack_steps,
                          generator=gen)
            with torch.no_grad():
                robust += int((model(xa).argmax(1) == yb).sum())
    out["val_acc"] = correct / len(x)
    if cfg.select_metric == "val_rob":
        out["val_rob"] = robust / len(x)
    return out


# ---------------------------------------------------------------------------------------------- checkpoints
def _meta(cfg: TrainConfig, data: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "model": cfg.model, "num_classes": int(data["num_classes"]),
            "in_channels": int(data["in_channels"]), "feature_point": cfg.feature_point, "config": to_dict(cfg)}


def _cpu_state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def load_checkpoint_model(path: str | Path, *, map_location: str = "cpu") -> nn.Module:
    """Rebuild the architecture stored in a checkpoint of this package (or a run dir's selected checkpoint) and
    load its weights; returned in eval mode."""
    path = Path(path)
    if path.is_dir():
        from .teachers import _resolve_run_dir
        path = _resolve_run_dir(path)
    payload = load_checkpoint(path, map_location=map_location)
    if not is_package_checkpoint(payload):
        raise CheckpointError(f"{str(path)!r} is not a mixacm checkpoint (no format tag); load raw state dicts with "
                              f"build_model(...).load_state_dict")
    return load_package_model(payload, source=str(path))


# ------------------------------------------------------------------------------------------------ training
def check_names(cfg: TrainConfig) -> None:
    from . import data as D
    from .models import build_model
    try:
        check_method(cfg)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if not cfg.dataset.startswith("imagefolder:") and cfg.dataset not in D.DATASETS:
        raise ConfigError(f"unknown dataset {cfg.dataset!r}; valid: {', '.join(D.DATASETS)}")
    with torch.device("meta"):  # validates the model name without allocating weights
        try:
            build_model(cfg.model, num_classes=10)
        except ValueError as e:
            raise ConfigError(str(e)) from None


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def train(cfg: TrainConfig, run_dir: str | Path, *, resume: bool = False) -> dict[str, Any]:
    """Train cfg.method into run_dir; returns the summary dict (see module docstring and README)."""
    cfg = check(cfg)
    check_names(cfg)
    run_dir = Path(run_dir)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if resume and not last_path.is_file():
        raise CheckpointError(f"--resume: no checkpoint {last_path}; start without --resume")
    if not resume and last_path.is_file():
        raise ConfigError(f"run dir {str(run_dir)!r} already holds a checkpoint; pass --resume to continue it or "
                          f"choose another --run-dir")
    rank, world, local_rank = _init_distributed()
    is_main = rank == 0
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = _device(cfg, local_rank)
    _seed_everything(cfg.seed, cfg.deterministic)
    t_start = time.time()

    data = _load_data(cfg)
    student = _build_student(cfg, data).to(device)
    teacher, tinfo = _load_teacher(cfg, data, device, run_dir)
    distill = _distill_modules(cfg, teacher, student).to(device)
    cuda = device.type == "cuda"
    if cuda and cfg.channels_last:
        student = student.to(memory_format=torch.channels_last)
        if teacher is not None:
            teacher = teacher.to(memory_format=torch.channels_last)

    n_local = len(data["x"]) // world
    steps_per_epoch = n_local // cfg.batch_size  # drop_last: equal steps on every rank, no 1-sample BN batches
    if cfg.max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    params = list(student.parameters()) + list(distill.parameters())
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                          weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_factor(cfg, steps_per_epoch))
    gen = torch.Generator().manual_seed(cfg.seed)  # permutation, augmentation, mixup, attack starts

    wrapped: nn.Module = WithFeatures(student)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        wrapped = DDP(wrapped, device_ids=[local_rank] if cuda else None)
    ctx = StepContext(cfg=cfg, student=wrapped, student_module=student, teacher=teacher, generator=gen,
                      affine=distill["affine"] if "affine" in distill else None,
                      adapters=distill["adapters"] if "adapters" in distill else None, distributed=world > 1)
    step_fn = METHODS[cfg.method]
    meta = _meta(cfg, data)
    select_key = {"val_acc": "val_acc", "val_rob": "val_rob", "last": None}[cfg.select_metric]
    best: dict[str, Any] = {"value": None, "epoch": None}
    start_epoch, global_step = 0, 0
    history_time = 0.0

    if resume:
        state = load_checkpoint(last_path)
        if not is_package_checkpoint(state):
            raise CheckpointError(f"{last_path} is not a mixacm checkpoint; start a new run dir")
        if state["model"] != cfg.model:
            raise CheckpointError(f"checkpoint {last_path} was trained with model {state['model']!r} but the config "
                                  f"builds {cfg.model!r}; resume with the original config")
        load_state_strict(student, state["model_state"], source=str(last_path), expected=cfg.model)
        distill.load_state_dict(state["distill_state"])
        opt.load_state_dict(state["optimizer_state"])
        sched.load_state_dict(state["scheduler_state"])
        start_epoch, global_step = int(state["epoch"]), int(state["global_step"])
        best = dict(state["best"])
        history_time = float(state.get("train_time_s", 0.0))
        _set_rng_state(state["rng"], gen)  # last: building models above consumed the global RNG
        if is_main:  # drop metric lines of epochs that the checkpoint does not contain
            mpath = run_dir / "metrics.jsonl"
            if mpath.is_file():
                keep = [ln for ln in mpath.read_text().splitlines() if ln.strip()
                        and json.loads(ln).get("epoch", 0) <= start_epoch]
                mpath.write_text("".join(ln + "\n" for ln in keep))

    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_json(run_dir / "config.json", to_dict(cfg))
        _write_json(run_dir / "meta.json", {"seed": cfg.seed, "git": git_commit(), "machine": _machine(),
                                            "device": str(device), "world_size": world, "teacher": tinfo,
                                            "n_train": len(data["x"]), "n_val": len(data["x_val"]),
                                            "steps_per_epoch": steps_per_epoch, "started": time.time()})
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cuda and cfg.bf16 else contextlib.nullcontext())
    from tqdm.auto import tqdm
    from .data import augment

    bar = tqdm(total=(cfg.epochs - start_epoch) * steps_per_epoch, disable=not (cfg.progress and is_main),
               desc=f"{cfg.method}:{cfg.model}", dynamic_ncols=True, leave=False)
    x_all, y_all = data["x"], data["y"]
    train_time = history_time
    last_val: dict[str, float] = {}
    try:
        for epoch in range(start_epoch, cfg.epochs):
            student.train()
            t0 = time.time()
            perm = torch.randperm(len(x_all), generator=gen)
            if world > 1:
                perm = perm[rank::world][:n_local]
            sums: dict[str, float] = {}
            loss_sum, correct, seen = 0.0, 0, 0
            for s in range(steps_per_epoch):
                idx = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
                xb = augment(x_all[idx], cfg.augment, generator=gen).to(device, non_blocking=True)
                yb = y_all[idx].to(device, non_blocking=True)
                if cuda and cfg.channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                with autocast:
                    out = step_fn(ctx, xb, yb)
                terms = {k: float(v) for k, v in out.terms.items()}
                total = float(out.loss.detach())
                if not math.isfinite(total) or not all(math.isfinite(v) for v in terms.values()):
                    bad = [k for k, v in terms.items() if not math.isfinite(v)] or ["total (weighted sum)"]
                    kept = (f"last good checkpoint {last_path} (epoch {epoch})"
                            if last_path.is_file() else "no checkpoint yet (diverged in the first epoch)")
                    raise DivergenceError(f"loss term {', '.join(repr(b) for b in bad)} became "
                                          f"{terms.get(bad[0], total)} at epoch {epoch + 1} step {s + 1}; training "
                                          f"stopped, {kept}; lower lr or alpha_acm")
                opt.zero_grad(set_to_none=True)
                out.loss.backward()
                opt.step()
                sched.step()
                global_step += 1
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v
                loss_sum += total
                correct += int((out.logits.detach().argmax(1) == yb).sum()) if out.logits.shape[0] == len(yb) else 0
                seen += len(yb)
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{total:.3f}")
            epoch_time = time.time() - t0
            train_time += epoch_time
            last_val = _validate(cfg, student, data, device)
            student.train()
            n = max(steps_per_epoch, 1)
            record = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "loss": loss_sum / n,
                      "terms": {k: v / n for k, v in sums.items()}, "train_acc": correct / max(seen, 1),
                      **last_val, "epoch_time_s": epoch_time, "step_time_s": epoch_time / n}
            # a constant predictor scores 1/K robust accuracy: never select an epoch below twice chance clean acc
            usable = select_key != "val_rob" or last_val.get("val_acc", 0.0) >= 2.0 / data["num_classes"]
            improved = select_key is not None and select_key in last_val and usable and (
                best["value"] is None or last_val[select_key] > best["value"])
            if improved:
                best = {"value": last_val[select_key], "epoch": epoch + 1}
            if is_main:
                with open(run_dir / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
                ckpt = {**meta, "model_state": _cpu_state(student), "distill_state": _cpu_state(distill),
                        "optimizer_state": opt.state_dict(), "scheduler_state": sched.state_dict(),
                        "rng": _rng_state(gen), "epoch": epoch + 1, "global_step": global_step, "best": best,
                        "train_time_s": train_time, **{k: float(v) for k, v in last_val.items()}}
                if improved:  # best first: a crash between the two writes leaves last.pt one epoch behind
                    save_checkpoint({k: v for k, v in ckpt.items()
                                     if k not in ("optimizer_state", "scheduler_state", "rng")}, best_path)
                save_checkpoint(ckpt, last_path)
    finally:
        bar.close()

    selected = best_path if (select_key is not None and best_path.is_file()) else last_path
    sel_payload = load_checkpoint(selected) if is_main else {}
    summary = {
        "status": "completed", "run_dir": str(run_dir), "checkpoint": str(selected),
        "final_checkpoint": str(last_path), "best_checkpoint": str(best_path) if best_path.is_file() else None,
        "select_metric": cfg.select_metric, "selected_epoch": best["epoch"] if selected == best_path else cfg.epochs,
        "val_acc": sel_payload.get("val_acc"), "val_rob": sel_payload.get("val_rob"),
        "final_val_acc": last_val.get("val_acc"), "final_val_rob": last_val.get("val_rob"),
        "method": cfg.method, "model": cfg.model, "dataset": cfg.dataset, "seed": cfg.seed, "epochs": cfg.epochs,
        "steps_per_epoch": steps_per_epoch, "n_train": len(data["x"]), "n_val": len(data["x_val"]),
        "num_params": sum(p.numel() for p in student.parameters()),
        "teacher": tinfo or None, "device": str(device), "world_size": world,
        "train_time_s": train_time, "step_time_s": train_time / max(1, cfg.epochs * steps_per_epoch),
        "wall_time_s": time.time() - t_start, "metrics": str(run_dir / "metrics.jsonl"), "config": to_dict(cfg),
    }
    if is_main:
        _write_json(run_dir / "summary.json", summary)
    return summary


# ------------------------------------------------------------------------------------------------------ CLI
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mixacm train", description="Train a model from a config file.")
    p.add_argument("config", help="TOML/JSON config, e.g. configs/digits/mixacm.toml")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (repeatable), e.g. --set lr=0.05 --set eps=8/255")
    p.add_argument("--run-dir", default=None, help="output directory (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last.pt")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config, args.sets)
        run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / Path(args.config).stem
        summary = train(cfg, run_dir, resume=args.resume)
    except (ConfigError, TeacherError, CheckpointError, DivergenceError) as e:
        print(f"mixacm train: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: summary[k] for k in ("checkpoint", "val_acc", "val_rob", "selected_epoch", "train_time_s")},
                     indent=2))
    return 0


__all__ = ["train", "main", "load_checkpoint_model", "DivergenceError"]
