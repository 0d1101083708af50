"""Mixup (Zhang et al. 2018) at batch level: x~ = lam x + (1 - lam) x[perm], lam ~ Beta(alpha, alpha).

Paper settings (Sec. 6 / Supp. A.1): alpha = 1 on CIFAR, 0.2 on ImageNet; alpha = 0 switches mixup off.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def sample_lam(alpha: float, generator: torch.Generator | None = None) -> float:
    """lam ~ Beta(alpha, alpha); 1.0 when alpha == 0. Deterministic given ``generator`` (or torch's global seed)."""
    if alpha < 0:
        raise ValueError(f"mixup alpha must be >= 0, got {alpha}")
    if alpha == 0:
        return 1.0
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())  # torch RNG drives numpy's Beta
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mix_batch(x: Tensor, y: Tensor, alpha: float, generator: torch.Generator | None = None
              ) -> tuple[Tensor, Tensor, Tensor, float]:
    """Returns (x_mix, y_a, y_b, lam): x_mix = lam x + (1 - lam) x[perm], y_a = y, y_b = y[perm].

    alpha = 0 -> (x, y, y, 1.0) with no mixing. ``generator`` must be a CPU generator; draws happen on
    the CPU and indices move to x's device.
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} samples, y {y.shape[0]}")
    lam = sample_lam(alpha, generator)
    if alpha == 0:
        return x, y, y, 1.0
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    x_mix = lam * x + (1.0 - lam) * x[perm]
    return x_mix, y, y[perm], lam
