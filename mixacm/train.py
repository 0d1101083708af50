"""`mixacm train CONFIG [--set key=value ...] [--run-dir D] [--resume]`: one engine for every method of the paper.

    train(cfg, run_dir, *, resume=False) -> summary dict (also written to RUN_DIR/summary.json)

Run directory: config.json (resolved config), meta.json (seed, git commit, machine), metrics.jsonl (one line per
epoch), last.pt (every epoch, atomic), best.pt (model selected on the held-out validation split; never the test
set), summary.json. ``--resume`` restores model, optimiser, scheduler, RNG states (torch, numpy, python, the
data/mixup/attack generator) and epoch, so that on CPU the final weights equal an uninterrupted run's bit for bit.

Batches come from mixacm.batches: CIFAR-size sets stay on the device as tensors (slices of a seeded permutation,
augmented on the fly); ImageNet and large ImageFolder trees stream through a DataLoader (workers, pinned memory,
DistributedSampler shards). CUDA when present (bf16 autocast), CPU otherwise; channels_last on both.

DDP through torchrun when WORLD_SIZE > 1: ``batch_size`` is the GLOBAL batch (each rank takes batch_size/world of
it, so a run has the same optimiser steps per epoch as one process with that batch); one DDP wrapper holds the
student AND the learned distillation modules (Table 9 affine maps, Table 8 adapters); rank 0 fetches or trains the
teacher (single-process) before the other ranks load it from the cache; validation and the best-epoch decision run
on rank 0 and are broadcast; only rank 0 writes. Loss terms and accuracy stay on the device and are read every
``log_every`` steps and at the end of an epoch (where the NaN/Inf check runs).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
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
from .methods import METHODS, NEEDS_TEACHER, StepContext, WithFeatures, check_method, term_weights, uses_kd
from .teachers import FrozenTeacher, TeacherError, accuracy_gate, load_package_model, load_teacher_model


class DivergenceError(RuntimeError):
    """A loss term became NaN/Inf; training stopped and the last good checkpoint was kept."""


# ----------------------------------------------------------------------------------------------- environment
def _machine() -> dict[str, Any]:
    from .machine import describe

    return {**describe(), "torch_threads": torch.get_num_threads()}


RANK0_WAIT_HOURS = 24  # how long the other ranks wait for rank 0 to fetch/train the teacher
_SINGLE_PROCESS = [0]  # > 0 inside _single_process(): train() ignores torchrun's environment


@contextlib.contextmanager
def _single_process():
    """Nested train() calls (a ``config:`` teacher trained by rank 0) run as one plain process: no process group."""
    _SINGLE_PROCESS[0] += 1
    try:
        yield
    finally:
        _SINGLE_PROCESS[0] -= 1


def _env_world() -> int:
    return 1 if _SINGLE_PROCESS[0] else int(os.environ.get("WORLD_SIZE", "1"))


def _init_distributed() -> tuple[int, int, int]:
    """(rank, world_size, local_rank); initialises torch.distributed when launched by torchrun."""
    world = _env_world()
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


def _seed_everything(seed: int, deterministic: bool, cudnn_benchmark: bool = True) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:  # speed: let cuDNN pick the fastest kernels for the (fixed) input shapes
        torch.backends.cudnn.benchmark = cudnn_benchmark
        torch.backends.cudnn.deterministic = False
        torch.use_deterministic_algorithms(False)


def _rank0_first(fn, rank: int, world: int):
    """Run fn on rank 0 first (single-process, e.g. download or train a teacher into the shared cache), then on the
    other ranks (which then find the cache filled). An error on rank 0 is re-raised on every rank (no hang)."""
    if world <= 1:
        return fn()
    import datetime

    import torch.distributed as dist
    # training a config: teacher can take hours: the others wait on a gloo group with a long timeout (the default
    # group keeps its short one, so real hangs elsewhere still surface)
    wait = dist.new_group(backend="gloo", timeout=datetime.timedelta(hours=RANK0_WAIT_HOURS))
    box: list[Any] = [None]
    try:
        if rank == 0:
            try:
                with _single_process():
                    out = fn()
            except Exception as e:
                box[0] = (type(e).__name__, str(e).splitlines()[0] if str(e) else type(e).__name__)
                dist.broadcast_object_list(box, src=0, group=wait)
                raise
            dist.broadcast_object_list(box, src=0, group=wait)
            return out
        dist.broadcast_object_list(box, src=0, group=wait)
    finally:
        dist.destroy_process_group(wait)
    if box[0] is not None:
        kind, msg = box[0]
        cls = {"ConfigError": ConfigError, "TeacherError": TeacherError, "CheckpointError": CheckpointError}
        raise cls.get(kind, ConfigError)(f"rank 0 failed: {msg}")
    return fn()


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
        if D.is_streamed(cfg.dataset, cfg.data_root, force=cfg.stream_data):
            return _load_streamed(cfg)
        k = D.num_classes(cfg.dataset)
        x, y = D.load_split(cfg.dataset, "train", cfg.data_root)
    except FileNotFoundError as e:
        raise ConfigError(f"dataset {cfg.dataset!r}: {str(e).splitlines()[0]}; set data_root=PATH") from None
    except ValueError as e:  # e.g. an ImageFolder with mixed image sizes (the message names the file and the fix)
        raise ConfigError(f"dataset {cfg.dataset!r}: {str(e).splitlines()[0]}") from None
    if cfg.data_fraction < 1:
        keep = D.stratified_subset(y, cfg.data_fraction, cfg.seed)
        x, y = x[keep], y[keep]
    tr, va = D.train_val_split(y, cfg.val_fraction, cfg.seed)
    out = {"x": x[tr], "y": y[tr], "x_val": x[va], "y_val": y[va], "num_classes": k, "in_channels": x.shape[1],
           "n_train": len(tr), "n_val": len(va)}
    try:
        out["mean"], out["std"] = D.dataset_stats(cfg.dataset)
    except (ValueError, KeyError):
        out["mean"] = out["std"] = None
    if out["n_train"] < cfg.batch_size:
        raise ConfigError(f"only {out['n_train']} training examples but batch_size={cfg.batch_size}; "
                          f"lower batch_size or raise data_fraction")
    return out


def _load_streamed(cfg: TrainConfig) -> dict[str, Any]:
    """ImageNet / a large ImageFolder tree: file lists only; images are decoded by the DataLoader when used."""
    from . import data as D
    classes, items = D.scan_split(cfg.dataset, "train", cfg.data_root)
    y = torch.tensor([k for _, k in items], dtype=torch.int64)
    if cfg.data_fraction < 1:
        keep = D.stratified_subset(y, cfg.data_fraction, cfg.seed)
        items, y = [items[int(i)] for i in keep], y[keep]
    tr, va = D.train_val_split(y, cfg.val_fraction, cfg.seed)
    va = va[torch.randperm(len(va), generator=torch.Generator().manual_seed(cfg.seed + 1))]  # val_n spans classes
    out: dict[str, Any] = {
        "train_set": D.ImageFiles([items[int(i)] for i in tr], D.image_transform(True, augment=cfg.augment),
                                  seed=cfg.seed),
        "val_set": D.ImageFiles([items[int(i)] for i in va], D.image_transform(False)),
        "num_classes": len(classes), "in_channels": 3, "n_train": len(tr), "n_val": len(va)}
    out["mean"], out["std"] = D.dataset_stats(cfg.dataset)
    if out["n_train"] < cfg.batch_size:
        raise ConfigError(f"only {out['n_train']} training examples but batch_size={cfg.batch_size}; "
                          f"lower batch_size or raise data_fraction")
    return out


def _val_tensors(data: dict[str, Any], n: int) -> tuple[Tensor, Tensor]:
    """The first n held-out examples as tensors (decoded on demand for streamed data)."""
    if "val_set" in data:
        return data["val_set"].tensors(range(min(n, data["n_val"])))
    return data["x_val"][:n], data["y_val"][:n]


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


def _load_teacher(cfg: TrainConfig, data: dict[str, Any], device: torch.device, run_dir: Path, rank: int = 0,
                  world: int = 1) -> tuple[FrozenTeacher | None, dict[str, Any]]:
    if cfg.method not in NEEDS_TEACHER:
        return None, {}
    if cfg.teacher is None:
        raise ConfigError(f"method {cfg.method!r} needs a teacher; set teacher=robustbench:NAME, a checkpoint path, "
                          f"a run dir or config:PATH.toml")
    k = data["num_classes"]
    # rank 0 downloads (RobustBench) or trains (config:, single-process) into the cache first, then the others load
    model, info = _rank0_first(lambda: load_teacher_model(
        cfg.teacher, model_name=cfg.teacher_model, num_classes=cfg.teacher_num_classes or k,
        in_channels=data["in_channels"], cache_dir=Path(cfg.teacher_cache or run_dir.parent / "_teachers")),
        rank, world)
    t_channels = getattr(model, "mean", None)
    if t_channels is not None and t_channels.shape[0] != data["in_channels"]:
        raise ConfigError(f"teacher {cfg.teacher!r} takes {t_channels.shape[0]}-channel images but dataset "
                          f"{cfg.dataset!r} has {data['in_channels']}; use a teacher trained on this kind of data")
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
        x_gate, y_gate = _val_tensors(data, cfg.teacher_gate_n)
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
    then cosine annealing to 0 without restarts (Sec. 6 / Supp. A.1), constant, or piecewise (x 0.1 at
    ``lr_milestones``)."""
    total = cfg.epochs * steps_per_epoch
    warm = int(round(cfg.warmup_epochs * steps_per_epoch))
    start = cfg.warmup_start_lr / cfg.lr

    def factor(step: int) -> float:
        if step < warm:
            return start + (1.0 - start) * step / warm
        if cfg.schedule == "constant":
            return 1.0
        if cfg.schedule == "piecewise":  # x 0.1 at each milestone (fractions of all steps; Rice et al., Pang et al.)
            return 0.1 ** sum(step >= m * total for m in cfg.lr_milestones)
        t = (step - warm) / max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))

    return factor


# ---------------------------------------------------------------------------------------------- evaluation
def _validate(cfg: TrainConfig, model: nn.Module, data: dict[str, Any], device: torch.device) -> dict[str, float]:
    """Clean (and, for select_metric='val_rob', PGD) accuracy on the validation split; leaves the model in eval."""
    from .attacks import pgd_linf
    from .batches import eval_batches
    n_val = data["n_val"] if cfg.val_n is None else min(cfg.val_n, data["n_val"])
    if n_val == 0:
        return {}
    model.eval()
    out: dict[str, float] = {}
    correct = robust = 0
    gen = torch.Generator().manual_seed(cfg.seed + 12345)  # own generator: validation never moves training RNG
    for xb, yb in eval_batches(data, cfg.val_n, cfg.eval_batch_size, device, num_workers=_workers(cfg, 1)):
        with torch.no_grad():
            correct += int((model(xb).argmax(1) == yb).sum())
        if cfg.select_metric == "val_rob":
            xa = pgd_linf(model, xb, yb, eps=cfg.eps, step_size=cfg.attack_step, steps=cfg.val_attack_steps,
                          generator=gen)
            with torch.no_grad():
                robust += int((model(xa).argmax(1) == yb).sum())
    out["val_acc"] = correct / n_val
    if cfg.select_metric == "val_rob":
        out["val_rob"] = robust / n_val
    return out


def _workers(cfg: TrainConfig, world: int) -> int:
    from .batches import default_workers
    return default_workers(world) if cfg.num_workers is None else cfg.num_workers


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
            n_blocks = len(build_model(cfg.model, num_classes=10).feature_channels)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    if cfg.alpha_acm_reference is not None:
        from .models import feature_channels_of
        try:
            n_ref = len(feature_channels_of(cfg.alpha_acm_reference))
        except ValueError as e:
            raise ConfigError(f"alpha_acm_reference: {e}") from None
        if n_ref != n_blocks:
            raise ConfigError(f"alpha_acm_reference: {cfg.alpha_acm_reference} has {n_ref} feature blocks, the student "
                              f"{cfg.model} has {n_blocks}; name a reference of the student's family (e.g. wrn-34-10)")
    if cfg.blocks is not None and not set(cfg.blocks) <= set(range(1, n_blocks + 1)):
        raise ConfigError(f"blocks={cfg.blocks}: {cfg.model} has feature blocks 1..{n_blocks} (1-based, Table 7); "
                          f"choose a subset such as [{n_blocks - 1}, {n_blocks}]")


def health_warnings(cfg: TrainConfig, metrics: list[dict[str, Any]], val_acc: float | None,
                    num_classes: int) -> list[str]:
    """Warnings a run should not end without: collapse to chance accuracy, and one weighted loss term dwarfing the
    others by three orders of magnitude (the objective is then that term alone, e.g. alpha_acm far too large)."""
    out = []
    if val_acc is not None and val_acc <= 1.5 / num_classes:
        out.append(f"collapsed to chance: held-out accuracy {val_acc:.3f} with {num_classes} classes (chance "
                   f"{1 / num_classes:.3f}); check lr and the loss weights")
    weights = term_weights(cfg)
    if metrics and weights:
        terms = metrics[0].get("terms", {})
        weighted = {k: abs(w * terms[k]) for k, w in weights.items() if k in terms and w * terms[k] != 0}
        if len(weighted) > 1:
            big, small = max(weighted, key=weighted.get), min(weighted, key=weighted.get)
            if weighted[big] > 1e3 * weighted[small]:
                out.append(f"loss term {big!r} (weighted {weighted[big]:.3g}) dwarfs {small!r} "
                           f"({weighted[small]:.3g}) by {weighted[big] / weighted[small]:.0f}x in epoch 1: the "
                           f"objective is {big!r} alone; lower its weight")
    return out


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def _bcast(obj: Any, world: int) -> Any:
    """rank 0's obj on every rank."""
    if world <= 1:
        return obj
    import torch.distributed as dist
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _divergence_message(names: list[str], row: list[float], epoch: int, step: int, last_path: Path) -> str:
    total, terms = row[0], dict(zip(names, row[1:]))
    bad = [k for k, v in terms.items() if not math.isfinite(v)] or ["total (weighted sum)"]
    kept = (f"last good checkpoint {last_path} (epoch {epoch})"
            if last_path.is_file() else "no checkpoint yet (diverged in the first epoch)")
    return (f"loss term {', '.join(repr(b) for b in bad)} became {terms.get(bad[0], total)} at epoch {epoch + 1} "
            f"step {step}; training stopped, {kept}; lower lr or alpha_acm")


def _debug_rank_state(run_dir: Path, rank: int, student: nn.Module, distill: nn.Module, **info: Any) -> None:
    """Test hook ($MIXACM_DEBUG_RANK_STATE=1): each rank dumps its final weights to RUN_DIR/rank<r>_state.pt so that
    a test can check that all ranks hold the same model. Production runs never write it."""
    if os.environ.get("MIXACM_DEBUG_RANK_STATE") != "1":
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"model_state": _cpu_state(student), "distill_state": _cpu_state(distill), "rank": rank, **info},
               run_dir / f"rank{rank}_state.pt")


def train(cfg: TrainConfig, run_dir: str | Path, *, resume: bool = False, extend: bool = False) -> dict[str, Any]:
    """Train cfg.method into run_dir; returns the summary dict (see module docstring and README).

    The run dir is locked for the life of the call, checked and cleaned before any long work (mixacm.rundir):
    ``resume`` continues from last.pt only with the recorded config (except keys that change how, not what, it
    trains); a finished run trains on only with ``extend`` and a larger ``epochs``."""
    from .rundir import prepare

    from .batches import per_rank_batch

    is_rank0 = int(os.environ.get("RANK", "0")) == 0
    cfg = check(cfg)
    check_names(cfg)  # every config mistake before the run dir is touched
    if cfg.log_every < 1:
        raise ConfigError(f"log_every={cfg.log_every} must be >= 1")
    try:  # before any process group exists: a bad global batch fails fast with one line on every rank
        per_rank_batch(cfg.batch_size, _env_world())
    except ValueError as e:
        raise ConfigError(str(e)) from None
    state = prepare(run_dir, cfg, resume=resume, extend=extend, lock=is_rank0)
    try:
        return _train(cfg, Path(run_dir), resume=resume, recorded_meta=state.meta)
    finally:
        state.release()


def _train(cfg: TrainConfig, run_dir: Path, *, resume: bool, recorded_meta: dict[str, Any] | None) -> dict[str, Any]:
    from .batches import InMemoryBatches, StreamedBatches, per_rank_batch
    local_batch = per_rank_batch(cfg.batch_size, _env_world())
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if cfg.sync_bn and _env_world() > 1 and (cfg.device == "cpu" or not torch.cuda.is_available()):
        raise ConfigError("sync_bn=true needs CUDA (SyncBatchNorm does not run on CPU); set sync_bn=false")
    rank, world, local_rank = _init_distributed()
    is_main = rank == 0
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = _device(cfg, local_rank)
    cuda = device.type == "cuda"
    _seed_everything(cfg.seed, cfg.deterministic, cfg.cudnn_benchmark)
    t_start = time.time()

    data = _rank0_first(lambda: _load_data(cfg), rank, world)  # rank 0 downloads / builds the decode cache first
    student = _build_student(cfg, data).to(device)
    teacher, tinfo = _load_teacher(cfg, data, device, run_dir, rank, world)
    distill = _distill_modules(cfg, teacher, student).to(device)
    if cfg.sync_bn and world > 1:
        student = nn.SyncBatchNorm.convert_sync_batchnorm(student)
    channels_last = cfg.channels_last  # NHWC pays on CPU too (verification/benchmarks/test_bench_train_step.py)
    memory_format = "channels_last" if channels_last else "contiguous"  # named in meta.json and summary.json
    if channels_last:
        student = student.to(memory_format=torch.channels_last)
        if teacher is not None:
            teacher = teacher.to(memory_format=torch.channels_last)

    gen = torch.Generator().manual_seed(cfg.seed)  # permutation, augmentation, mixup, attack starts
    if "train_set" in data:
        source: Any = StreamedBatches(data["train_set"], global_batch=cfg.batch_size, rank=rank, world=world,
                                      seed=cfg.seed, device=device, num_workers=_workers(cfg, world),
                                      max_steps_per_epoch=cfg.max_steps_per_epoch, channels_last=channels_last)
    else:
        source = InMemoryBatches(data["x"], data["y"], global_batch=cfg.batch_size, rank=rank, world=world,
                                 generator=gen, augment=cfg.augment, device=device,
                                 max_steps_per_epoch=cfg.max_steps_per_epoch, channels_last=channels_last)
        del data["x"], data["y"]  # the source holds them (on the device)
    steps_per_epoch = source.steps_per_epoch  # len(train) // GLOBAL batch: the same for any world size
    params = list(student.parameters()) + list(distill.parameters())
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                          weight_decay=cfg.weight_decay)
    # optimiser steps per epoch: each minibatch is replayed free_replays times (Free-AT; 1 for every other method)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_factor(cfg, steps_per_epoch * cfg.free_replays))

    # one module holds student + learned distillation modules: DDP syncs (and rank 0 saves) both
    wrapped: nn.Module = WithFeatures(student, distill=distill, cfg=cfg)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        partial_blocks = cfg.blocks is not None and len(list(distill.parameters())) > 0  # maps of unused blocks
        wrapped = DDP(wrapped, device_ids=[local_rank] if cuda else None, find_unused_parameters=partial_blocks)
    if cfg.compile:
        wrapped = torch.compile(wrapped)
    ctx = StepContext(cfg=cfg, student=wrapped, student_module=student, teacher=teacher, generator=gen,
                      affine=distill["affine"] if "affine" in distill else None,
                      adapters=distill["adapters"] if "adapters" in distill else None, distributed=world > 1,
                      feature_term_in_forward=True)
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
        session = {"git": git_commit(), "machine": _machine(), "device": str(device), "world_size": world,
                   "memory_format": memory_format, "started": time.time()}
        meta_now = {"seed": cfg.seed, **session, "teacher": tinfo, "n_train": data["n_train"], "n_val": data["n_val"],
                    "batch_size_global": cfg.batch_size, "batch_size_per_rank": local_batch,
                    "steps_per_epoch": steps_per_epoch}
        if recorded_meta is not None:  # a resume: the run's first start and machine stay, each resume is appended
            meta_now = {**recorded_meta, "resumes": [*recorded_meta.get("resumes", []),
                                                      {**session, "from_epoch": start_epoch}]}
        _write_json(run_dir / "meta.json", meta_now)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cuda and cfg.bf16 else contextlib.nullcontext())
    from tqdm.auto import tqdm

    bar = tqdm(total=(cfg.epochs - start_epoch) * steps_per_epoch * cfg.free_replays, disable=not (cfg.progress and is_main),
               desc=f"{cfg.method}:{cfg.model}", dynamic_ncols=True, leave=False)
    train_time = history_time
    last_val: dict[str, float] = {}
    try:
        for epoch in range(start_epoch, cfg.epochs):
            student.train()
            t0 = time.time()
            names: list[str] | None = None
            pending: list[Tensor] = []  # per step [total, *terms] on the device; read every log_every steps
            sums: dict[str, float] = {}
            loss_sum, seen = 0.0, 0
            correct = torch.zeros((), dtype=torch.int64, device=device)

            def flush(step: int) -> None:  # one host sync for the window; NaN/Inf check on read
                nonlocal loss_sum
                if not pending:
                    return
                rows = torch.stack(pending)
                bad = (~torch.isfinite(rows)).any()
                if world > 1:  # every rank stops together (a lone raise would hang the others in a collective)
                    import torch.distributed as dist
                    flag = bad.to(torch.int32).reshape(1)
                    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                    any_bad = bool(flag.item())
                else:
                    any_bad = bool(bad)
                table = rows.double().cpu().tolist()
                first = step - len(table) + 1  # 1-based step of the first row
                if any_bad:
                    for i, row in enumerate(table):
                        if not all(math.isfinite(v) for v in row):
                            raise DivergenceError(_divergence_message(names or [], row, epoch, first + i, last_path))
                    raise DivergenceError(f"a loss term became NaN/Inf on another rank at epoch {epoch + 1} (steps "
                                          f"{first}-{step}); training stopped; lower lr or alpha_acm")
                for row in table:
                    loss_sum += row[0]
                    for k, v in zip(names or [], row[1:]):
                        sums[k] = sums.get(k, 0.0) + v
                pending.clear()
                bar.update(len(table))
                bar.set_postfix(epoch=epoch + 1, loss=f"{table[-1][0]:.3f}")

            ctx.epoch = epoch
            for s, (xb, yb) in enumerate(source.epoch(epoch)):
                for _ in range(cfg.free_replays):  # Free-AT replays each minibatch m times; 1 otherwise
                    with autocast:
                        out = step_fn(ctx, xb, yb)
                    if names is None:
                        names = list(out.terms)
                    pending.append(torch.stack([out.loss.detach().float(), *(out.terms[k].float() for k in names)]))
                    opt.zero_grad(set_to_none=True)
                    out.loss.backward()
                    opt.step()
                    if out.post_step is not None:  # AWP removes its weight perturbation, Free-AT carries delta
                        out.post_step()
                    sched.step()
                    global_step += 1
                    if out.logits.shape[0] == len(yb):
                        correct += (out.logits.detach().argmax(1) == yb).sum()
                    seen += len(yb)
                if (s + 1) % cfg.log_every == 0:
                    flush((s + 1) * cfg.free_replays)
            flush(steps_per_epoch * cfg.free_replays)
            n_correct = int(correct)
            if world > 1:  # training loss / accuracy over all ranks
                import torch.distributed as dist
                vec = torch.tensor([loss_sum, *sums.values(), n_correct, seen], dtype=torch.float64, device=device)
                dist.all_reduce(vec)
                loss_sum = float(vec[0]) / world
                sums = {k: float(v) / world for k, v in zip(sums, vec[1:-2].tolist())}
                n_correct, seen = int(vec[-2]), int(vec[-1])
            epoch_time = time.time() - t0
            train_time += epoch_time
            improved = False
            if is_main:  # validation and the best-epoch decision: rank 0 only, then broadcast
                last_val = _validate(cfg, student, data, device)
                # a constant predictor scores 1/K robust accuracy: never select an epoch below twice chance clean acc
                usable = select_key != "val_rob" or last_val.get("val_acc", 0.0) >= 2.0 / data["num_classes"]
                improved = select_key is not None and select_key in last_val and usable and (
                    best["value"] is None or last_val[select_key] > best["value"])
                if improved:
                    best = {"value": last_val[select_key], "epoch": epoch + 1}
            last_val, best, improved = _bcast((last_val, best, improved), world)
            student.train()
            n = max(steps_per_epoch * cfg.free_replays, 1)
            record = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "loss": loss_sum / n,
                      "terms": {k: v / n for k, v in sums.items()}, "train_acc": n_correct / max(seen, 1),
                      **last_val, "epoch_time_s": epoch_time, "step_time_s": epoch_time / n}
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

    _debug_rank_state(run_dir, rank, student, distill, best=best, global_step=global_step, world_size=world,
                      steps_per_epoch=steps_per_epoch, batch_size_per_rank=local_batch)
    if world > 1:  # rank 0 has written its last checkpoint before anyone reports completion
        import torch.distributed as dist
        dist.barrier()
    selected = best_path if (select_key is not None and best_path.is_file()) else last_path
    sel_payload = load_checkpoint(selected) if is_main else {}
    summary = {
        "status": "completed", "run_dir": str(run_dir), "checkpoint": str(selected),
        "final_checkpoint": str(last_path), "best_checkpoint": str(best_path) if best_path.is_file() else None,
        "select_metric": cfg.select_metric, "selected_epoch": best["epoch"] if selected == best_path else cfg.epochs,
        "val_acc": sel_payload.get("val_acc"), "val_rob": sel_payload.get("val_rob"),
        "final_val_acc": last_val.get("val_acc"), "final_val_rob": last_val.get("val_rob"),
        "method": cfg.method, "model": cfg.model, "dataset": cfg.dataset, "seed": cfg.seed, "epochs": cfg.epochs,
        "steps_per_epoch": steps_per_epoch, "n_train": data["n_train"], "n_val": data["n_val"],
        "batch_size_per_rank": local_batch, "global_step": global_step,
        "num_params": sum(p.numel() for p in student.parameters()),
        "teacher": tinfo or None, "device": str(device), "world_size": world,
        "memory_format": memory_format,
        "train_time_s": train_time, "step_time_s": train_time / max(1, cfg.epochs * steps_per_epoch),
        "wall_time_s": time.time() - t_start, "metrics": str(run_dir / "metrics.jsonl"), "config": to_dict(cfg),
    }
    if is_main:
        mpath = run_dir / "metrics.jsonl"
        lines = [json.loads(x) for x in mpath.read_text().splitlines() if x.strip()] if mpath.is_file() else []
        summary["warnings"] = health_warnings(cfg, lines, summary["final_val_acc"], data["num_classes"])
        for w in summary["warnings"]:
            print(f"mixacm train: warning: {w}", file=sys.stderr)
        _write_json(run_dir / "summary.json", summary)
    return summary


# ------------------------------------------------------------------------------------------------------ CLI
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mixacm train", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                description="Train a model from a config file.")
    p.add_argument("config", help="TOML/JSON config, e.g. configs/digits/mixacm.toml")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (repeatable), e.g. --set lr=0.05 --set eps=8/255")
    p.add_argument("--run-dir", default=None, help="output directory (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --run-dir from its last.pt (with the recorded config)")
    p.add_argument("--extend", action="store_true",
                   help="with --resume: train a finished run on to a larger epochs (--set epochs=N)")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config, args.sets)
        run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / Path(args.config).stem
        summary = train(cfg, run_dir, resume=args.resume or args.extend, extend=args.extend)
    except (ConfigError, TeacherError, CheckpointError, DivergenceError) as e:
        print(f"mixacm train: error: {e}", file=sys.stderr)
        return 2
    finally:
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # rank 0 prints the result
    print(json.dumps({k: summary[k] for k in ("checkpoint", "val_acc", "val_rob", "selected_epoch", "train_time_s")},
                     indent=2))
    return 0


__all__ = ["train", "main", "load_checkpoint_model", "DivergenceError"]
