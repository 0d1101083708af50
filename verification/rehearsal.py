"""Rehearsal of the gpu tier on whatever device there is (the CPU here): ``pytest verification/ --gpu --rehearse``.

Everything a paper cell does on a GPU runs, through the same code (spec -> config -> teacher -> train -> evaluate ->
compare -> results.json -> report), at toy AMOUNTS and never in a different KIND:

- the real architectures (WRN-34-10, WRN-28-10, ResNet-50, ...), input sizes and class counts;
- the real data code paths, fed generated data of the real shape: torchvision's CIFAR-10 / CIFAR-100 readers on
  pickled batches in torchvision's own layout (only the download's checksum check is stood in for: the files are
  not the real ones), and ImageNet's streamed ImageFolder reader on a 1000-class tree of JPEGs larger than 224x224;
- every RobustBench teacher the specs name, built from robustbench's own model classes with seeded random weights,
  written where and as robustbench's download leaves it (``mixacm.robustbench_standin``), and loaded through the
  normal ``robustbench:NAME`` path; the two teachers that are not downloadable by name (CIFAR-100 and
  ImageNet-32x32 WRN-28-10) are random-weight checkpoints given through their documented environment variables.

Amounts (``amounts()``): 1 epoch of 2 optimiser steps (Free-AT: 2 replays of each), global batch 2, training
attacks of 2 steps, half the training split held out (so that the 2-image-per-class ImageNet tree has validation
images), 4 validation images with a 1-step PGD, 2 test images, every evaluation attack capped at 2
iterations (AutoAttack's targeted parts on 1 target class), at most 2 seeds per row. Random teachers are at chance, so
their accuracy gate runs with an expected accuracy of 0 (the gate's code path, not its threshold, is rehearsed).
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

TRAIN_PER_CLASS = {"cifar10": 50, "cifar100": 50}  # val_fraction 0.02 -> 1 validation image per class
TEST_PER_CLASS = 2
IMAGENET_CLASSES, IMAGENET_SIDE = 1000, 240  # larger than 224: the resize/crop transforms are exercised


def amounts() -> dict[str, Any]:
    return {
        "train": {"epochs": 1, "max_steps_per_epoch": 2, "batch_size": 2, "val_n": 4, "val_attack_steps": 1,
                  "attack_steps": 2, "val_fraction": 0.5,
                  "teacher_gate_n": 4, "teacher_expected_acc": 0.0, "eval_batch_size": 8, "progress": False},
        "eval_n": 2, "max_iterations": 2, "seeds": 2, "keep_checkpoints": False, "max_replays": 2,
        "scale": "REHEARSAL: random teachers, generated data, 2 optimiser steps, 2 test images, attacks capped at "
                 "2 iterations; exercises the code paths, measures nothing",
    }


def _cifar_pickles(root: Path, kind: str, rng: np.random.Generator) -> None:
    """torchvision's on-disk layout: cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} or
    cifar-100-python/{train,test,meta}; images as (N, 3072) uint8 rows, labels as lists."""
    k = 10 if kind == "cifar10" else 100
    d = root / ("cifar-10-batches-py" if kind == "cifar10" else "cifar-100-python")
    d.mkdir(parents=True, exist_ok=True)
    label_key = "labels" if kind == "cifar10" else "fine_labels"

    def batch(per_class: int) -> dict[str, Any]:
        y = np.repeat(np.arange(k), per_class)
        rng.shuffle(y)
        return {"data": rng.integers(0, 256, (len(y), 3072), dtype=np.uint8), label_key: y.tolist()}

    if kind == "cifar10":
        train = batch(TRAIN_PER_CLASS[kind])
        parts = np.array_split(np.arange(len(train[label_key])), 5)
        for i, idx in enumerate(parts, 1):
            with open(d / f"data_batch_{i}", "wb") as f:
                pickle.dump({"data": train["data"][idx], label_key: [train[label_key][j] for j in idx]}, f)
        files = {"test_batch": batch(TEST_PER_CLASS), "batches.meta": {"label_names": [f"c{i}" for i in range(k)]}}
    else:
        files = {"train": batch(TRAIN_PER_CLASS[kind]), "test": batch(TEST_PER_CLASS),
                 "meta": {"fine_label_names": [f"c{i}" for i in range(k)]}}
    for name, obj in files.items():
        with open(d / name, "wb") as f:
            pickle.dump(obj, f)


def _imagenet_tree(root: Path, rng: np.random.Generator, per_class: dict[str, int]) -> None:
    from PIL import Image

    for split, n in per_class.items():
        for c in range(IMAGENET_CLASSES):
            d = root / split / f"n{c:08d}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = rng.integers(0, 256, (IMAGENET_SIDE, IMAGENET_SIDE + 16, 3), dtype=np.uint8)
                Image.fromarray(a).save(d / f"n{c:08d}_{i}.JPEG", quality=50)


def _random_teacher(path: Path, arch: str, num_classes: int, seed: int) -> None:
    """A package checkpoint of a random-weight ``arch`` (what a user passes through the teacher env variables)."""
    import torch

    from mixacm.checkpoint import FORMAT, save_checkpoint
    from mixacm.models import build_model

    torch.manual_seed(seed)
    m = build_model(arch, num_classes=num_classes)
    save_checkpoint({"format": FORMAT, "model": arch, "num_classes": num_classes, "in_channels": 3,
                     "feature_point": "pre", "model_state": m.state_dict(), "config": {}}, path)


def teacher_cache(root: str | Path) -> Path:
    """Where the stand-ins are written: the plan's ``teacher_cache``, i.e. robustbench's ``model_dir``."""
    return Path(root) / "teachers"


def env_for(root: str | Path) -> dict[str, str]:
    """The environment variables that point the real loaders at the generated data and the stand-in teachers of
    ``prepare(root)`` (set them before the specs are built: they decide which cells are runnable)."""
    from verification.specs import TEACHER_ENV

    root = Path(root)
    env = {"MIXACM_DATA_ROOT": str(root / "data"), "MIXACM_IMAGENET": str(root / "imagenet")}
    env.update({var: str(teacher_cache(root) / f"{kind}-wrn-28-10-random.pt") for kind, var in TEACHER_ENV.items()})
    return env


def prepare(root: str | Path, robustbench_names: list[str], *, imagenet: bool = True) -> dict[str, str]:
    """Write the generated data and stand-in teachers under ``root`` (once; reused when present); returns
    ``env_for(root)``."""
    from verification.specs import TEACHER_ENV

    root = Path(root)
    rng = np.random.default_rng(0)
    data = root / "data"
    for kind in ("cifar10", "cifar100"):
        marker = data / f".{kind}-done"
        if not marker.is_file():
            _cifar_pickles(data, kind, rng)
            marker.touch()
    env = env_for(root)
    if imagenet:
        tree = Path(env["MIXACM_IMAGENET"])
        if not (tree / ".done").is_file():
            _imagenet_tree(tree, rng, {"train": 2, "val": 1})
            (tree / ".done").touch()
    if robustbench_names:
        from mixacm.robustbench_standin import write_standin_checkpoint
        for name in robustbench_names:
            write_standin_checkpoint(name, teacher_cache(root), seed=0)
    for kind, var in TEACHER_ENV.items():
        if not Path(env[var]).is_file():
            _random_teacher(Path(env[var]), "wrn-28-10", 100 if kind == "cifar100" else 1000, seed=1)
    return env


def stand_in_download_checks() -> None:
    """The generated CIFAR pickles are not the real files, so torchvision's md5 check (the guard of its download)
    is stood in for; nothing else of the reader changes."""
    import torchvision.datasets.cifar as cifar

    cifar.check_integrity = lambda fpath, md5=None: os.path.isfile(fpath)  # the files must exist; md5 not checked


def apply(env: dict[str, str]) -> None:
    os.environ.update(env)
    stand_in_download_checks()
