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

import contextlib
import functools
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from .checkpoint import (FORMAT, CheckpointError, is_package_checkpoint, load_checkpoint, load_state_strict,
                         save_checkpoint)
from .config import ConfigError, TrainConfig, check, load_config, to_dict
from .gitinfo import git_commit
from .methods import METHODS, NEEDS_TEACHER, check_method, term_weights, uses_kd
from .steps import StepContext, WithFeatures, acm_reference_channels
from .teachers import (FrozenTeacher, TeacherError, accuracy_gate, config_teacher, load_package_model,
                       load_teacher_model)


class DivergenceError(RuntimeError):
    """A loss term became NaN/Inf; training stopped and the last good checkpoint was kept."""


# ----------------------------------------------------------------------------------------------- environment
def _machine() -> dict[str, Any]:
    from .machine import describe

    return {**describe(), "torch_threads": torch.get_num_threads()}


RANK0_WAIT_HOURS = 24  # how long the other ranks wait for rank 0 to fetch/train the teacher


def _launched_world() -> int:
    """The world size torchrun launched this process with (1 for a plain process)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _on_cuda(cfg: TrainConfig) -> bool:
    return cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())


def _init_distributed(cfg: TrainConfig, launched_world: int | None = None) -> tuple[int, int, int]:
    """(rank, world_size, local_rank); initialises torch.distributed when launched by torchrun: NCCL when the ranks
    train on GPUs (one each), gloo when they train on the CPU (also where CUDA exists). More ranks on a node than it
    has GPUs stop here, before any rank selects a GPU it does not have. ``launched_world`` is the launch's world size
    (default: torchrun's); 1 trains as one plain process without a process group, as a ``config:`` teacher that rank
    0 trains does."""
    world = _launched_world() if launched_world is None else launched_world
    if world <= 1:
        return 0, 1, 0
    import torch.distributed as dist
    cuda = _on_cuda(cfg)
    if cuda:
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "0")) or world
        gpus = torch.cuda.device_count()
        if local_world > gpus:
            raise ConfigError(f"{local_world} ranks on this node but {gpus} GPU{'s' if gpus != 1 else ''}: launch "
                              f"one rank per GPU (torchrun --nproc_per_node={gpus}) or train on the CPU with "
                              f"device=cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))


def _device(cfg: TrainConfig, local_rank: int) -> torch.device:
    if _on_cuda(cfg):
        if not torch.cuda.is_available():
            raise ConfigError("device='cuda' but CUDA is not available; use device=auto or device=cpu")
        gpus = torch.cuda.device_count()
        if local_rank >= gpus:
            raise ConfigError(f"LOCAL_RANK={local_rank} but this host has {gpus} GPU{'s' if gpus != 1 else ''}: launch "
                              f"one rank per GPU (torchrun --nproc_per_node={gpus}) or set device=cpu")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


# ------------------------------------------------------------------------------------------ GPU memory
GPU_MEMORY_HEADROOM = 0.9  # the share of a GPU's memory a training step may plan to use
INPUT_SIDE = {"imagenet": 224, "digits": 8}  # other named data sets: 32 px (CIFAR); ImageFolder trees: unknown


def _gpu_memory_bytes(device: torch.device) -> int | None:
    """Total memory of the training GPU; None on the CPU (nothing is checked there)."""
    if device.type != "cuda":
        return None
    return int(torch.cuda.get_device_properties(device).total_memory)


@functools.lru_cache(maxsize=None)
def activation_elements(model: str, side: int, num_classes: int = 10) -> int:
    """Elements of every layer output in one forward of one image (outputs of in-place layers counted once),
    counted on the meta device (no weights allocated): what the backward pass keeps, to within a small factor."""
    from .models import build_model

    total = [0]

    def count(module, _inputs, out):
        if torch.is_tensor(out) and not getattr(module, "inplace", False):
            total[0] += out.numel()

    with torch.device("meta"):
        m = build_model(model, num_classes=num_classes)
        x = torch.empty(1, 3, side, side)
    hooks = [mod.register_forward_hook(count) for mod in m.modules() if not list(mod.children())]
    with torch.no_grad():
        m.eval()(x)  # eval: one image through train-mode BatchNorm at 1x1 spatial size would be refused
    for h in hooks:
        h.remove()
    return total[0]


def training_memory_bytes(cfg: TrainConfig, local_batch: int) -> int | None:
    """Estimated GPU memory of one training step at ``local_batch`` images per rank: the student's activations
    (bf16 under autocast, else fp32) plus weights, gradients and momentum in fp32; None when the input size is not
    known before the data is read (ImageFolder trees)."""
    if cfg.dataset.startswith("imagefolder:"):
        return None
    side = INPUT_SIDE.get(cfg.dataset, 32)
    per_elem = 2 if cfg.bf16 else 4
    acts = activation_elements(cfg.model, side) * per_elem * local_batch
    from .models import build_model, count_parameters
    with torch.device("meta"):
        params = count_parameters(build_model(cfg.model, num_classes=10))
    return int(acts + 16 * params)


def check_fits_gpu(cfg: TrainConfig, local_batch: int, gpu_bytes: int | None) -> None:
    """Stop before any data is read when one rank's training step cannot fit its GPU (e.g. Table 2's ResNet-50 at
    global batch 2048 on one GPU), naming the fix: spread the global batch over more GPUs with torchrun."""
    if gpu_bytes is None:
        return
    need = training_memory_bytes(cfg, local_batch)
    if need is None or need <= GPU_MEMORY_HEADROOM * gpu_bytes:
        return
    n = 2
    while (local_batch % n == 0 and n < local_batch
           and training_memory_bytes(cfg, local_batch // n) > GPU_MEMORY_HEADROOM * gpu_bytes):
        n *= 2
    gib = 2**30
    raise ConfigError(f"batch_size={cfg.batch_size} ({local_batch} per rank) needs about {need / gib:.0f} GiB on one "
                      f"GPU ({cfg.model} at {INPUT_SIDE.get(cfg.dataset, 32)} px) but the GPU has "
                      f"{gpu_bytes / gib:.0f} GiB; spread the global batch over more GPUs (torchrun "
                      f"--nproc_per_node={n}: {local_batch // n} per GPU, the same optimiser steps; README 'On several "
                      f"GPUs or nodes') or lower batch_size (and lr with it)")


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
    """Run fn on rank 0 first (e.g. download or train a teacher into the shared cache), then on the other ranks
    (which then find the cache filled). An error on rank 0 is re-raised on every rank (no hang)."""
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
    from .normalization import model_stats
    kw: dict[str, Any] = {"in_channels": data["in_channels"], "feature_point": cfg.feature_point,
                          **model_stats(cfg.dataset, data["in_channels"])}
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

    def fetch() -> tuple[nn.Module, dict[str, Any]]:
        cache = Path(cfg.teacher_cache or run_dir.parent / "_teachers")
        if cfg.teacher.startswith("config:"):
            _train_config_teacher(cfg.teacher, cache)
        return load_teacher_model(cfg.teacher, model_name=cfg.teacher_model, num_classes=cfg.teacher_num_classes or k,
                                  in_channels=data["in_channels"], cache_dir=cache)

    # rank 0 downloads (RobustBench) or trains (config:, single-process) into the cache first, then the others load
    model, info = _rank0_first(fetch, rank, world)
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


def _train_config_teacher(spec: str, cache_root: Path) -> None:
    """Train the teacher of a ``config:`` spec into its cache run dir unless it has finished there (an interrupted one
    resumes). It trains as one plain process, also inside a torchrun rank: its own run, not a share of this one."""
    teacher = config_teacher(spec, cache_root)
    if teacher.finished:
        return
    print(f"mixacm: training the teacher of {teacher.path} into {teacher.run_dir} (once; {teacher.cfg.epochs} epochs "
          f"of {teacher.cfg.method})", file=sys.stderr, flush=True)
    _check_and_train(teacher.cfg, teacher.run_dir, resume=teacher.interrupted, extend=False, launched_world=1)


def _distill_modules(cfg: TrainConfig, teacher: FrozenTeacher | None, student: nn.Module) -> nn.ModuleDict:
    """Learned pieces of the feature loss (trained with the student, saved in its checkpoint)."""
    from . import losses as L
    mods = nn.ModuleDict()
    if teacher is None or cfg.method != "mixacm" or not cfg.use_acm:
        return mods
    ct = tuple(f["num_chs"] for f in teacher.feature_info)
    cs = tuple(f["num_chs"] for f in student.feature_info)
    if cfg.feature_loss == "acm" and cfg.transform.endswith("_affine"):
        mods["affine"] = L.make_affine_maps(ct, cs, cfg.transform.split("_")[0])
    if cfg.feature_loss == "direct" and ct != cs:
        mods["adapters"] = L.make_feature_adapters(ct, cs)
    return mods


def param_groups(cfg: TrainConfig, modules: list[nn.Module]) -> list[dict[str, Any]]:
    """The optimiser's parameter groups: one group at cfg.weight_decay ("all"), or, for "conv_fc_weights", the conv
    and linear kernels at cfg.weight_decay and every other parameter (batch-norm scales and shifts, biases) at 0."""
    params = [p for m in modules for p in m.parameters()]
    if cfg.weight_decay_on == "all":
        return [{"params": params}]
    kernels = {id(m.weight) for mod in modules for m in mod.modules()
               if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) and m.weight is not None}
    return [{"params": [p for p in params if id(p) in kernels]},
            {"params": [p for p in params if id(p) not in kernels], "weight_decay": 0.0}]


def _lr_factor(cfg: TrainConfig, steps_per_epoch: int):
    """Per-step LR multiplier: linear warm-up from warmup_start_lr to lr over warmup_epochs (Supp. A.1, ImageNet),
    then cosine annealing to 0 without restarts (Sec. 6 / Supp. A.1), constant, or piecewise (x 0.1 at
    ``lr_milestones``)."""
    total = cfg.epochs * steps_per_epoch
    warm = int(round(cfg.warmup_epochs * steps_per_epoch))
    start = cfg.warmup_start_lr / cfg.lr

    def factor(step: int) -> float:
        step += cfg.lr_lead_steps
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
            n_blocks = len(build_model(cfg.model, num_classes=10).feature_info)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    acm_reference_channels(cfg, n_blocks)  # a reference architecture with the student's block count
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
    return _check_and_train(cfg, Path(run_dir), resume=resume, extend=extend, launched_world=_launched_world())


def _check_and_train(cfg: TrainConfig, run_dir: Path, *, resume: bool, extend: bool,
                     launched_world: int) -> dict[str, Any]:
    """train() in a launch of ``launched_world`` processes: check the config, lock and clean the run dir, train. A
    ``config:`` teacher comes through here with launched_world=1: one plain process inside whichever rank trains it."""
    from .batches import per_rank_batch
    from .rundir import prepare

    writer = launched_world <= 1 or int(os.environ.get("RANK", "0")) == 0  # locks and writes the run dir
    cfg = check(cfg)
    check_names(cfg)  # every config mistake before the run dir is touched
    if cfg.log_every < 1:
        raise ConfigError(f"log_every={cfg.log_every} must be >= 1")
    try:  # before any process group exists: a bad global batch fails fast with one line on every rank
        per_rank_batch(cfg.batch_size, launched_world)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    state = prepare(run_dir, cfg, resume=resume, extend=extend, lock=writer)
    try:
        return _train(cfg, run_dir, resume=resume, recorded_meta=state.meta, launched_world=launched_world)
    finally:
        state.release()


@dataclass(eq=False)
class _Run:
    """One training run from setup to summary: what is built once (process, data, models, batches, optimiser) and
    the progress that resume restores and the epochs advance."""
    cfg: TrainConfig
    run_dir: Path
    rank: int
    world: int
    local_batch: int                 # examples per rank and step
    device: torch.device
    t_start: float                   # after seeding: the summary's wall_time_s counts from here
    data: dict[str, Any]             # held-out examples and counts (the training examples live in ``source``)
    student: nn.Module
    teacher: FrozenTeacher | None
    tinfo: dict[str, Any]            # where the teacher came from and its accuracy gate
    distill: nn.ModuleDict           # learned distillation modules, trained and saved with the student
    gen: torch.Generator             # permutation, augmentation, mixup, attack starts
    source: Any                      # InMemoryBatches | StreamedBatches
    steps_per_epoch: int             # batches per epoch: len(train) // GLOBAL batch, the same for any world size
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    ctx: StepContext
    step_fn: Any                     # METHODS[cfg.method]
    meta: dict[str, Any]             # what every checkpoint carries to rebuild the model
    start_epoch: int = 0             # epochs done before this process started (resume)
    global_step: int = 0             # optimiser steps done
    best: dict[str, Any] = field(default_factory=lambda: {"value": None, "epoch": None})
    train_time: float = 0.0          # training seconds over every start of the run
    last_val: dict[str, float] = field(default_factory=dict)  # the latest epoch's validation

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.pt"

    @property
    def memory_format(self) -> str:  # named in meta.json and summary.json
        return "channels_last" if self.cfg.channels_last else "contiguous"

    @property
    def select_key(self) -> str | None:
        return {"val_acc": "val_acc", "val_rob": "val_rob", "last": None}[self.cfg.select_metric]


def _train(cfg: TrainConfig, run_dir: Path, *, resume: bool, recorded_meta: dict[str, Any] | None,
           launched_world: int) -> dict[str, Any]:
    """One run in a prepared run dir: set up, restore last.pt (resume), record config and meta, train, summarise."""
    run = _setup(cfg, run_dir, launched_world)
    if resume:
        _resume(run)
    if run.is_main:
        _write_run_records(run, recorded_meta)
    _train_epochs(run)
    return _finish(run)


# ------------------------------------------------------------------------------------------------- setup
def _setup(cfg: TrainConfig, run_dir: Path, launched_world: int) -> _Run:
    """Start the process and build what a fresh run trains with: data, models, batches, optimiser, step context."""
    rank, world, local_rank, device, local_batch = _start_process(cfg, launched_world)
    t_start = time.time()
    data = _rank0_first(lambda: _load_data(cfg), rank, world)  # rank 0 downloads / builds the decode cache first
    student, teacher, tinfo, distill = _build_models(cfg, data, device, run_dir, rank, world)
    gen = torch.Generator().manual_seed(cfg.seed)  # permutation, augmentation, mixup, attack starts
    source = _batch_source(cfg, data, gen, device, rank, world)
    steps_per_epoch = source.steps_per_epoch  # len(train) // GLOBAL batch: the same for any world size
    opt = torch.optim.SGD(param_groups(cfg, [student, distill]), lr=cfg.lr, momentum=cfg.momentum,
                          nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
    # optimiser steps per epoch: each minibatch is replayed free_replays times (Free-AT; 1 for every other method)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_factor(cfg, steps_per_epoch * cfg.free_replays))
    ctx = _step_context(cfg, student, teacher, distill, gen, world, local_rank, device)
    return _Run(cfg=cfg, run_dir=run_dir, rank=rank, world=world, local_batch=local_batch, device=device,
                t_start=t_start, data=data, student=student, teacher=teacher, tinfo=tinfo, distill=distill, gen=gen,
                source=source, steps_per_epoch=steps_per_epoch, opt=opt, sched=sched, ctx=ctx,
                step_fn=METHODS[cfg.method], meta=_meta(cfg, data))


def _start_process(cfg: TrainConfig, launched_world: int) -> tuple[int, int, int, torch.device, int]:
    """(rank, world, local_rank, device, per-rank batch): join the process group (if launched into one), select the
    device, check that a training step fits its memory before any data is read, and seed every RNG."""
    from .batches import per_rank_batch
    local_batch = per_rank_batch(cfg.batch_size, launched_world)
    if cfg.sync_bn and launched_world > 1 and (cfg.device == "cpu" or not torch.cuda.is_available()):
        raise ConfigError("sync_bn=true needs CUDA (SyncBatchNorm does not run on CPU); set sync_bn=false")
    rank, world, local_rank = _init_distributed(cfg, launched_world)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = _device(cfg, local_rank)
    check_fits_gpu(cfg, local_batch, _gpu_memory_bytes(device))  # before any data is read (no-op on the CPU)
    _seed_everything(cfg.seed, cfg.deterministic, cfg.cudnn_benchmark)
    return rank, world, local_rank, device, local_batch


def _build_models(cfg: TrainConfig, data: dict[str, Any], device: torch.device, run_dir: Path, rank: int,
                  world: int) -> tuple[nn.Module, FrozenTeacher | None, dict[str, Any], nn.ModuleDict]:
    """(student, teacher, teacher info, learned distillation modules) on the device, in the run's memory format; the
    teacher is fetched (or a ``config:`` one trained) by rank 0 first, then gated on its held-out accuracy."""
    student = _build_student(cfg, data).to(device)
    teacher, tinfo = _load_teacher(cfg, data, device, run_dir, rank, world)
    distill = _distill_modules(cfg, teacher, student).to(device)
    if cfg.sync_bn and world > 1:
        student = nn.SyncBatchNorm.convert_sync_batchnorm(student)
    if cfg.channels_last:  # NHWC pays on CPU too (verification/benchmarks/test_bench_train_step.py)
        student = student.to(memory_format=torch.channels_last)
        if teacher is not None:
            teacher = teacher.to(memory_format=torch.channels_last)
    return student, teacher, tinfo, distill


def _batch_source(cfg: TrainConfig, data: dict[str, Any], gen: torch.Generator, device: torch.device, rank: int,
                  world: int) -> Any:
    """This rank's training batches: streamed through a DataLoader, or slices of tensors kept on the device (those
    tensors then leave ``data``: the source holds them)."""
    from .batches import InMemoryBatches, StreamedBatches
    if "train_set" in data:
        return StreamedBatches(data["train_set"], global_batch=cfg.batch_size, rank=rank, world=world,
                               seed=cfg.seed, device=device, num_workers=_workers(cfg, world),
                               max_steps_per_epoch=cfg.max_steps_per_epoch, channels_last=cfg.channels_last)
    source = InMemoryBatches(data["x"], data["y"], global_batch=cfg.batch_size, rank=rank, world=world,
                             generator=gen, augment=cfg.augment, device=device,
                             max_steps_per_epoch=cfg.max_steps_per_epoch, channels_last=cfg.channels_last)
    del data["x"], data["y"]
    return source


def _step_context(cfg: TrainConfig, student: nn.Module, teacher: FrozenTeacher | None, distill: nn.ModuleDict,
                  gen: torch.Generator, world: int, local_rank: int, device: torch.device) -> StepContext:
    """What a method's step works with. One module holds student + learned distillation modules: DDP syncs (and
    rank 0 saves) both."""
    wrapped: nn.Module = WithFeatures(student, distill=distill, cfg=cfg)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        partial_blocks = cfg.blocks is not None and len(list(distill.parameters())) > 0  # maps of unused blocks
        wrapped = DDP(wrapped, device_ids=[local_rank] if device.type == "cuda" else None,
                      find_unused_parameters=partial_blocks)
    if cfg.compile:
        wrapped = torch.compile(wrapped)
    return StepContext(cfg=cfg, student=wrapped, student_module=student, teacher=teacher, generator=gen,
                       affine=distill["affine"] if "affine" in distill else None,
                       adapters=distill["adapters"] if "adapters" in distill else None, distributed=world > 1,
                       feature_term_in_forward=True)


# ------------------------------------------------------------------------------------------------ resume
def _resume(run: _Run) -> None:
    """Restore student, distillation modules, optimiser, scheduler, progress and RNG states from last.pt; rank 0
    drops the metric lines of epochs that the checkpoint does not contain."""
    cfg, last_path = run.cfg, run.last_path
    state = load_checkpoint(last_path)
    if not is_package_checkpoint(state):
        raise CheckpointError(f"{last_path} is not a mixacm checkpoint; start a new run dir")
    if state["model"] != cfg.model:
        raise CheckpointError(f"checkpoint {last_path} was trained with model {state['model']!r} but the config "
                              f"builds {cfg.model!r}; resume with the original config")
    load_state_strict(run.student, state["model_state"], source=str(last_path), expected=cfg.model)
    run.distill.load_state_dict(state["distill_state"])
    run.opt.load_state_dict(state["optimizer_state"])
    run.sched.load_state_dict(state["scheduler_state"])
    run.start_epoch, run.global_step = int(state["epoch"]), int(state["global_step"])
    run.best = dict(state["best"])
    run.train_time = float(state.get("train_time_s", 0.0))
    _set_rng_state(state["rng"], run.gen)  # last: building models above consumed the global RNG
    if run.is_main:
        mpath = run.run_dir / "metrics.jsonl"
        if mpath.is_file():
            keep = [ln for ln in mpath.read_text().splitlines() if ln.strip()
                    and json.loads(ln).get("epoch", 0) <= run.start_epoch]
            mpath.write_text("".join(ln + "\n" for ln in keep))


def _write_run_records(run: _Run, recorded_meta: dict[str, Any] | None) -> None:
    """config.json (the resolved config) and meta.json (seed, git commit, machine, teacher, data and batch sizes); a
    resume keeps the run's first start and machine and appends this start to its ``resumes``."""
    cfg = run.cfg
    run.run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(run.run_dir / "config.json", to_dict(cfg))
    session = {"git": git_commit(), "machine": _machine(), "device": str(run.device), "world_size": run.world,
               "memory_format": run.memory_format, "started": time.time()}
    meta_now = {"seed": cfg.seed, **session, "teacher": run.tinfo, "n_train": run.data["n_train"],
                "n_val": run.data["n_val"], "batch_size_global": cfg.batch_size,
                "batch_size_per_rank": run.local_batch, "steps_per_epoch": run.steps_per_epoch}
    if recorded_meta is not None:  # a resume: the run's first start and machine stay, each resume is appended
        meta_now = {**recorded_meta, "resumes": [*recorded_meta.get("resumes", []),
                                                  {**session, "from_epoch": run.start_epoch}]}
    _write_json(run.run_dir / "meta.json", meta_now)


# ------------------------------------------------------------------------------------------------ epochs
def _train_epochs(run: _Run) -> None:
    """Train epochs start_epoch+1 .. cfg.epochs: each one's steps, then validation, metrics line and checkpoints."""
    cfg = run.cfg
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if run.cuda and cfg.bf16 else contextlib.nullcontext())
    from tqdm.auto import tqdm

    bar = tqdm(total=(cfg.epochs - run.start_epoch) * run.steps_per_epoch * cfg.free_replays,
               disable=not (cfg.progress and run.is_main), desc=f"{cfg.method}:{cfg.model}", dynamic_ncols=True,
               leave=False)
    try:
        for epoch in range(run.start_epoch, cfg.epochs):
            totals = _train_epoch(run, epoch, bar, autocast)
            _end_epoch(run, epoch, totals)
    finally:
        bar.close()


class _EpochTotals(NamedTuple):
    """One epoch's training totals over all ranks and its duration."""
    loss_sum: float              # summed over the epoch's steps (mean over ranks)
    sums: dict[str, float]       # each loss term, summed likewise
    correct: int                 # training examples classified correctly (all ranks)
    seen: int                    # training examples (all ranks)
    seconds: float


class _EpochTally:
    """One epoch's loss terms and training accuracy. Per step they stay on the device; ``flush`` reads the pending
    steps with one host sync, checks them for NaN/Inf (all ranks stop together) and adds them up on the host."""

    def __init__(self, run: _Run, epoch: int, bar: Any):
        self.run, self.epoch, self.bar = run, epoch, bar
        self.names: list[str] | None = None  # the method's loss terms, in the order of each pending row
        self.pending: list[Tensor] = []  # per step [total, *terms] on the device; read every log_every steps
        self.sums: dict[str, float] = {}
        self.loss_sum, self.seen = 0.0, 0
        self.correct = torch.zeros((), dtype=torch.int64, device=run.device)

    def record_loss(self, out: Any) -> None:
        """Keep one step's total loss and terms (a StepOutput) on the device."""
        if self.names is None:
            self.names = list(out.terms)
        self.pending.append(torch.stack([out.loss.detach().float(), *(out.terms[k].float() for k in self.names)]))

    def record_accuracy(self, logits: Tensor, yb: Tensor) -> None:
        """Count one step's examples and correct predictions, on the device (logits that are not one row per example
        of the batch count none correct)."""
        if logits.shape[0] == len(yb):
            self.correct += (logits.detach().argmax(1) == yb).sum()
        self.seen += len(yb)

    def flush(self, step: int) -> None:
        """Read the pending steps, the last of which is 1-based ``step`` of the epoch; DivergenceError on NaN/Inf."""
        if not self.pending:
            return
        rows = torch.stack(self.pending)
        bad = (~torch.isfinite(rows)).any()
        if self.run.world > 1:  # every rank stops together (a lone raise would hang the others in a collective)
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
                    raise DivergenceError(_divergence_message(self.names or [], row, self.epoch, first + i,
                                                              self.run.last_path))
            raise DivergenceError(f"a loss term became NaN/Inf on another rank at epoch {self.epoch + 1} (steps "
                                  f"{first}-{step}); training stopped; lower lr or alpha_acm")
        for row in table:
            self.loss_sum += row[0]
            for k, v in zip(self.names or [], row[1:]):
                self.sums[k] = self.sums.get(k, 0.0) + v
        self.pending.clear()
        self.bar.update(len(table))
        self.bar.set_postfix(epoch=self.epoch + 1, loss=f"{table[-1][0]:.3f}")

    def totals(self, seconds: float) -> _EpochTotals:
        """The epoch's totals over all ranks (call after the last flush)."""
        loss_sum, sums, n_correct, seen = self.loss_sum, self.sums, int(self.correct), self.seen
        world = self.run.world
        if world > 1:  # training loss / accuracy over all ranks
            import torch.distributed as dist
            vec = torch.tensor([loss_sum, *sums.values(), n_correct, seen], dtype=torch.float64,
                               device=self.run.device)
            dist.all_reduce(vec)
            loss_sum = float(vec[0]) / world
            sums = {k: float(v) / world for k, v in zip(sums, vec[1:-2].tolist())}
            n_correct, seen = int(vec[-2]), int(vec[-1])
        return _EpochTotals(loss_sum, sums, n_correct, seen, seconds)


def _train_epoch(run: _Run, epoch: int, bar: Any, autocast: Any) -> _EpochTotals:
    """Train one epoch (0-based ``epoch``) of optimiser steps; the loss terms are read every log_every batches."""
    cfg = run.cfg
    run.student.train()
    t0 = time.time()
    tally = _EpochTally(run, epoch, bar)
    run.ctx.epoch = epoch
    for s, (xb, yb) in enumerate(run.source.epoch(epoch)):
        for _ in range(cfg.free_replays):  # Free-AT replays each minibatch m times; 1 otherwise
            _train_step(run, tally, xb, yb, autocast)
        if (s + 1) % cfg.log_every == 0:
            tally.flush((s + 1) * cfg.free_replays)
    tally.flush(run.steps_per_epoch * cfg.free_replays)
    return tally.totals(time.time() - t0)


def _train_step(run: _Run, tally: _EpochTally, xb: Tensor, yb: Tensor, autocast: Any) -> None:
    """One optimiser step on the batch (xb, yb): the method's loss, backward, SGD and LR-schedule steps."""
    with autocast:
        out = run.step_fn(run.ctx, xb, yb)
    tally.record_loss(out)
    run.opt.zero_grad(set_to_none=True)
    out.loss.backward()
    run.opt.step()
    if out.post_step is not None:  # AWP removes its weight perturbation, Free-AT carries delta
        out.post_step()
    run.sched.step()
    run.global_step += 1
    tally.record_accuracy(out.logits, yb)


def _end_epoch(run: _Run, epoch: int, totals: _EpochTotals) -> None:
    """After an epoch's steps: validate and decide the best epoch, append its metrics line, save its checkpoints."""
    cfg = run.cfg
    run.train_time += totals.seconds
    improved = _validate_and_select(run, epoch)
    run.student.train()
    n = max(run.steps_per_epoch * cfg.free_replays, 1)
    record = {"epoch": epoch + 1, "lr": run.opt.param_groups[0]["lr"], "loss": totals.loss_sum / n,
              "terms": {k: v / n for k, v in totals.sums.items()}, "train_acc": totals.correct / max(totals.seen, 1),
              **run.last_val, "epoch_time_s": totals.seconds, "step_time_s": totals.seconds / n}
    if run.is_main:
        with open(run.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        _save_checkpoints(run, epoch, improved)


def _validate_and_select(run: _Run, epoch: int) -> bool:
    """Validate and decide whether this epoch is the best so far: rank 0 only, then broadcast; True if it is."""
    improved = False
    if run.is_main:
        run.last_val = _validate(run.cfg, run.student, run.data, run.device)
        key = run.select_key
        # a constant predictor scores 1/K robust accuracy: never select an epoch below twice chance clean acc
        usable = key != "val_rob" or run.last_val.get("val_acc", 0.0) >= 2.0 / run.data["num_classes"]
        improved = key is not None and key in run.last_val and usable and (
            run.best["value"] is None or run.last_val[key] > run.best["value"])
        if improved:
            run.best = {"value": run.last_val[key], "epoch": epoch + 1}
    run.last_val, run.best, improved = _bcast((run.last_val, run.best, improved), run.world)
    return improved


def _save_checkpoints(run: _Run, epoch: int, improved: bool) -> None:
    """last.pt after every epoch (with optimiser, scheduler and RNG states to resume from), best.pt when improved."""
    ckpt = {**run.meta, "model_state": _cpu_state(run.student), "distill_state": _cpu_state(run.distill),
            "optimizer_state": run.opt.state_dict(), "scheduler_state": run.sched.state_dict(),
            "rng": _rng_state(run.gen), "epoch": epoch + 1, "global_step": run.global_step, "best": run.best,
            "train_time_s": run.train_time, **{k: float(v) for k, v in run.last_val.items()}}
    if improved:  # best first: a crash between the two writes leaves last.pt one epoch behind
        save_checkpoint({k: v for k, v in ckpt.items() if k not in ("optimizer_state", "scheduler_state", "rng")},
                        run.best_path)
    save_checkpoint(ckpt, run.last_path)


# ------------------------------------------------------------------------------------------------ finish
def _finish(run: _Run) -> dict[str, Any]:
    """After the last epoch: every rank waits for rank 0's last checkpoint; rank 0 adds the health warnings and
    writes summary.json. Returns the summary (on every rank)."""
    _debug_rank_state(run.run_dir, run.rank, run.student, run.distill, best=run.best, global_step=run.global_step,
                      world_size=run.world, steps_per_epoch=run.steps_per_epoch, batch_size_per_rank=run.local_batch)
    if run.world > 1:  # rank 0 has written its last checkpoint before anyone reports completion
        import torch.distributed as dist
        dist.barrier()
    summary = _summary(run)
    if run.is_main:
        mpath = run.run_dir / "metrics.jsonl"
        lines = [json.loads(x) for x in mpath.read_text().splitlines() if x.strip()] if mpath.is_file() else []
        summary["warnings"] = health_warnings(run.cfg, lines, summary["final_val_acc"], run.data["num_classes"])
        for w in summary["warnings"]:
            print(f"mixacm train: warning ({run.run_dir}): {w}", file=sys.stderr)  # names the run: plans train many
        _write_json(run.run_dir / "summary.json", summary)
    return summary


def _summary(run: _Run) -> dict[str, Any]:
    """The run's summary: the selected checkpoint (best.pt unless select_metric='last' or none was saved) and its
    held-out scores, the final epoch's, sizes, teacher, device and times."""
    cfg, run_dir, best_path, last_path = run.cfg, run.run_dir, run.best_path, run.last_path
    selected = best_path if (run.select_key is not None and best_path.is_file()) else last_path
    sel_payload = load_checkpoint(selected) if run.is_main else {}
    return {
        "status": "completed", "run_dir": str(run_dir), "checkpoint": str(selected),
        "final_checkpoint": str(last_path), "best_checkpoint": str(best_path) if best_path.is_file() else None,
        "select_metric": cfg.select_metric,
        "selected_epoch": run.best["epoch"] if selected == best_path else cfg.epochs,
        "val_acc": sel_payload.get("val_acc"), "val_rob": sel_payload.get("val_rob"),
        "final_val_acc": run.last_val.get("val_acc"), "final_val_rob": run.last_val.get("val_rob"),
        "method": cfg.method, "model": cfg.model, "dataset": cfg.dataset, "seed": cfg.seed, "epochs": cfg.epochs,
        "steps_per_epoch": run.steps_per_epoch, "n_train": run.data["n_train"], "n_val": run.data["n_val"],
        "batch_size_per_rank": run.local_batch, "global_step": run.global_step,
        "num_params": sum(p.numel() for p in run.student.parameters()),
        "teacher": run.tinfo or None, "device": str(run.device), "world_size": run.world,
        "memory_format": run.memory_format,
        "train_time_s": run.train_time, "step_time_s": run.train_time / max(1, cfg.epochs * run.steps_per_epoch),
        "wall_time_s": time.time() - run.t_start, "metrics": str(run_dir / "metrics.jsonl"), "config": to_dict(cfg),
    }


# ------------------------------------------------------------------------------------------------------ CLI
def main(argv: list[str] | None = None) -> int:
    from .cli_parsers import train_parser

    p = train_parser()
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
