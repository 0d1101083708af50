"""Pieces shared by every model of the feature contract (see ``mixacm.models`` for the contract).

Input normalisation lives INSIDE the models: inputs are images in [0,1]; ``mean``/``std`` are
buffers of shape (C, 1, 1) (the layout of RobustBench's DMWideResNet, so its state_dicts load).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

# CIFAR-10 statistics as used by RobustBench's DMWideResNet (Gowal et al. 2020 checkpoints).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

FEATURE_POINTS = ("pre", "post")
ACTIVATIONS = {"relu": nn.ReLU, "swish": nn.SiLU}


def default_stats(in_channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """CIFAR-10 statistics for RGB input, (0.5, 0.5) per channel otherwise (e.g. grey digits)."""
    if in_channels == 3:
        return CIFAR10_MEAN, CIFAR10_STD
    return (0.5,) * in_channels, (0.5,) * in_channels


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


class FeatureModel(nn.Module):
    """Base: ``forward(x)`` returns logits only; subclasses implement ``forward_features``."""

    feature_channels: tuple[int, ...] = ()
    feature_point: str = "pre"

    def normalize(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def forward_features(self, x: Tensor, feature_point: str | None = None) -> tuple[Tensor, list[Tensor]]:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)[0]
