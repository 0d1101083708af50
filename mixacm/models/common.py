"""Pieces shared by every model of the feature contract (see ``mixacm.models`` for the contract).

Input normalisation lives INSIDE the models: inputs are images in [0,1]; ``mean``/``std`` are
buffers of shape (C, 1, 1) (the layout of RobustBench's DMWideResNet, so its state_dicts load).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..normalization import NEUTRAL, STATS

# Names of the data sets' statistics the models and teachers use; the values are mixacm.normalization's table.
CIFAR10_MEAN, CIFAR10_STD = STATS["cifar10"]
CIFAR100_MEAN, CIFAR100_STD = STATS["cifar100"]
IMAGENET_MEAN, IMAGENET_STD = STATS["imagenet"]

FEATURE_POINTS = ("pre", "post")
ACTIVATIONS = {"relu": nn.ReLU, "swish": nn.SiLU}


def default_stats(in_channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Statistics of a model built without any: CIFAR-10's for RGB input, ``NEUTRAL`` (0.5, 0.5) per channel
    otherwise. Not a data set's statistics for other input: the trainer passes its data set's
    (``mixacm.normalization.model_stats``; digits: 0.305 / 0.376)."""
    if in_channels == 3:
        return CIFAR10_MEAN, CIFAR10_STD
    return (NEUTRAL,) * in_channels, (NEUTRAL,) * in_channels


def register_normalization(module: nn.Module, in_channels: int,
                           mean: Sequence[float] | float | None, std: Sequence[float] | float | None,
                           persistent: bool = True) -> None:
    """Adds buffers ``mean``/``std`` of shape (C, 1, 1); None -> ``default_stats(in_channels)``.
    persistent=False keeps them out of the state_dict (RobustBench's DMWideResNet does so)."""
    dm, ds = default_stats(in_channels)
    mean = dm if mean is None else mean
    std = ds if std is None else std
    m = [float(v) for v in (mean if isinstance(mean, Sequence) else [mean])]
    s = [float(v) for v in (std if isinstance(std, Sequence) else [std])]
    m = m * in_channels if len(m) == 1 else m
    s = s * in_channels if len(s) == 1 else s
    if len(m) != in_channels or len(s) != in_channels:
        raise ValueError(f"mean/std need {in_channels} values (in_channels={in_channels}); got {len(m)} and {len(s)}")
    if min(s) <= 0:
        raise ValueError(f"std must be positive, got {s}")
    m, s = torch.tensor(m), torch.tensor(s)  # float32, on the default (possibly 'meta') device
    module.register_buffer("mean", m.view(in_channels, 1, 1), persistent=persistent)
    module.register_buffer("std", s.view(in_channels, 1, 1), persistent=persistent)


def check_feature_point(fp: str) -> str:
    if fp not in FEATURE_POINTS:
        raise ValueError(f"unknown feature_point {fp!r}; valid: {', '.join(FEATURE_POINTS)}")
    return fp


def make_activation(activation: str) -> type[nn.Module]:
    try:
        return ACTIVATIONS[activation]
    except KeyError:
        raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}") from None


def make_feature_info(channels: Sequence[int], reductions: Sequence[int], modules: Sequence[str]
                      ) -> list[dict[str, Any]]:
    """``feature_info`` in timm's format: one dict per block with ``num_chs`` (channels), ``reduction`` (input size
    over the block's spatial size) and ``module`` (the submodule whose output is the block's "pre" feature, so that a
    forward hook on it sees that tensor in ``forward_intermediates``)."""
    if not len(channels) == len(reductions) == len(modules):
        raise ValueError(f"feature_info needs one channel count, reduction and module per block; got "
                         f"{len(channels)}, {len(reductions)}, {len(modules)}")
    return [dict(num_chs=int(c), reduction=int(r), module=m) for c, r, m in zip(channels, reductions, modules)]


class FeatureModel(nn.Module):
    """Base: ``forward(x)`` returns logits only; subclasses implement ``forward_intermediates`` and set
    ``feature_info`` (``make_feature_info``), one dict per block: ``num_chs``, ``reduction``, ``module``. ``module``
    names the submodule whose output is the block's "pre" feature; the "post" feature is that tensor after the BN+act
    the network applies to it next (same channels and size; see ``mixacm.models``)."""

    feature_info: list[dict[str, Any]]
    feature_point: str = "pre"

    def normalize(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def forward_intermediates(self, x: Tensor, feature_point: str | None = None) -> tuple[Tensor, list[Tensor]]:
        """``(logits, [f_1, ..., f_m])`` from one forward pass; f_i has ``feature_info[i-1]["num_chs"]`` channels
        and spatial size input / ``feature_info[i-1]["reduction"]``. Unlike timm's method of this name, whose first
        element is the final (unpooled) feature map, the first element here is the logits, what ``forward``
        returns. ``feature_point``: "pre" | "post", None = the model's own (see ``mixacm.models``)."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_intermediates(x)[0]
