"""Batch sources of the trainer: one small interface over in-memory tensors and streamed image files.

    source.steps_per_epoch             optimiser steps per epoch (the same on every rank and for any world size:
                                       len(train) // GLOBAL batch, capped by max_steps_per_epoch)
    source.epoch(epoch) -> iterator    (x, y) of this rank, already on the device (augmented)

``batch_size`` is the GLOBAL batch; each of ``world`` ranks takes ``batch_size // world`` examples per step.

InMemoryBatches: the data set lives on the device; every epoch draws one seeded permutation (CPU generator shared
by all ranks), step s takes the global batch perm[s*B:(s+1)*B] and rank r its every world-th example
([r::world]). With world_size 1 this is exactly the single-process order (bit-exact resume relies on it).
StreamedBatches: a DataLoader over ImageFiles (mixacm.data) with DistributedSampler shards (seeded, set_epoch,
drop_last), workers and pinned memory; nothing is decoded ahead of the step that uses it. Images travel as uint8 and
become float32 in [0,1] on the device.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torch import Tensor

from .data import to_unit_float


def per_rank_batch(global_batch: int, world: int) -> int:
    """batch_size // world; ValueError (one line) unless it divides."""
    if global_batch % world:
        raise ValueError(f"batch_size={global_batch} (the global batch) is not divisible by the world size {world}; "
                         f"use a multiple of {world}")
    return global_batch // world


def _steps(n: int, global_batch: int, max_steps: int | None) -> int:
    steps = n // global_batch  # drop_last: equal steps on every rank, no 1-sample BN batches
    return min(steps, max_steps) if max_steps is not None else steps


class InMemoryBatches:
    def __init__(self, x: Tensor, y: Tensor, *, global_batch: int, rank: int = 0, world: int = 1,
                 generator: torch.Generator, augment: str = "none", device: torch.device | str = "cpu",
                 max_steps_per_epoch: int | None = None, channels_last: bool = False):
        self.device = torch.device(device)
        self.x, self.y = x.to(self.device), y.to(self.device)  # resident on the device for the whole run
        self.n = len(y)
        self.global_batch, self.rank, self.world = global_batch, rank, world
        self.local_batch = per_rank_batch(global_batch, world)
        self.gen, self.augment, self.channels_last = generator, augment, channels_last
        self.steps_per_epoch = _steps(self.n, global_batch, max_steps_per_epoch)

    def indices(self, perm: Tensor, step: int) -> Tensor:
        idx = perm[step * self.global_batch:(step + 1) * self.global_batch]
        return idx[self.rank::self.world] if self.world > 1 else idx

    def epoch(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:  # noqa: ARG002 - the generator carries state
        from .data import augment
        perm = torch.randperm(self.n, generator=self.gen)  # CPU, seeded: the same on every rank
        for s in range(self.steps_per_epoch):
            idx = self.indices(perm, s).to(self.device, non_blocking=True)
            xb = augment(self.x[idx], self.augment, generator=self.gen)
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yield xb, self.y[idx]


def default_workers(world: int) -> int:
    return max(0, min(8, (os.cpu_count() or 1) // max(world, 1) - 1))


class StreamedBatches:
    def __init__(self, dataset, *, global_batch: int, rank: int = 0, world: int = 1, seed: int = 0,
                 device: torch.device | str = "cpu", num_workers: int | None = None,
                 max_steps_per_epoch: int | None = None, channels_last: bool = False):
        from torch.utils.data import DistributedSampler
        self.dataset = dataset
        self.device = torch.device(device)
        self.global_batch, self.rank, self.world = global_batch, rank, world
        self.local_batch = per_rank_batch(global_batch, world)
        self.num_workers = default_workers(world) if num_workers is None else num_workers
        self.channels_last = channels_last
        self.sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                          drop_last=True)
        self.steps_per_epoch = _steps(len(dataset), global_batch, max_steps_per_epoch)

    def loader(self, epoch: int):
        from torch.utils.data import DataLoader
        self.sampler.set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        return DataLoader(self.dataset, batch_size=self.local_batch, sampler=self.sampler, drop_last=True,
                          num_workers=self.num_workers, pin_memory=self.device.type == "cuda",
                          persistent_workers=False, prefetch_factor=4 if self.num_workers > 0 else None)

    def epoch(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        it = iter(self.loader(epoch))
        try:
            for _ in range(self.steps_per_epoch):
                xb, yb = next(it)
                xb = to_unit_float(xb.to(self.device, non_blocking=True))  # shipped as uint8, converted on the device
                if self.channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                yield xb, yb.to(self.device, non_blocking=True)
        finally:
            del it  # shuts the workers down when the epoch is cut short (max_steps_per_epoch)


def eval_batches(data: dict, n: int | None, batch_size: int, device: torch.device, *,
                 num_workers: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
    """Validation batches (first n held-out examples, fixed order) on the device, in memory or streamed."""
    if "val_set" in data:
        from torch.utils.data import DataLoader, Subset
        ds = data["val_set"]
        if n is not None:
            ds = Subset(ds, range(min(n, len(ds))))
        for xb, yb in DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                 pin_memory=device.type == "cuda"):
            yield to_unit_float(xb.to(device, non_blocking=True)), yb.to(device, non_blocking=True)
        return
    x, y = data["x_val"], data["y_val"]
    if n is not None:
        x, y = x[:n], y[:n]
    for i in range(0, len(x), batch_size):
        yield x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)


__all__ = ["InMemoryBatches", "StreamedBatches", "eval_batches", "per_rank_batch", "default_workers"]
