"""White-box l-inf attacks on models that map [0,1] images to logits (shared by training and evaluation)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _margin_loss(logits: Tensor, y: Tensor) -> Tensor:
    # CW margin: max_{k != y} z_k - z_y, per sample  (B, K) -> (B,)
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.clone()
    other.scatter_(1, y[:, None], float("-inf"))
    return other.max(1).values - true


def pgd_linf(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    random_start: bool = True,
    loss: str = "ce",
    target_logits: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """PGD (Madry et al.) in the l-inf ball of radius eps around x, clipped to [0,1].

    loss: "ce" (cross-entropy), "cw" (margin), or "kl" (KL to ``target_logits``; TRADES/ARD style).
    Returns the adversarial input, detached; the model's train/eval mode is left as it was.
    """
    x = x.detach()
    delta = torch.zeros_like(x)
    if random_start:
        delta = (torch.rand(x.shape, generator=generator, device="cpu").to(x) * 2 - 1) * eps
    x_adv = (x + delta).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        logits = model(x_adv)
        if loss == "ce":
            obj = F.cross_entropy(logits, y, reduction="sum")
        elif loss == "cw":
            obj = _margin_loss(logits, y).sum()
        elif loss == "kl":
            if target_logits is None:
                raise ValueError("loss='kl' needs target_logits")
            obj = F.kl_div(F.log_softmax(logits, 1), F.softmax(target_logits, 1), reduction="sum")
        else:
            raise ValueError(f"unknown PGD loss {loss!r}; valid: ce, cw, kl")
        (grad,) = torch.autograd.grad(obj, x_adv)
        x_adv = x_adv.detach() + step_size * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv.detach()


def fgsm(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, random_start: bool = False,
         step_size: float | None = None, generator: torch.Generator | None = None) -> Tensor:
    """FGSM (one signed-gradient step of size eps); with random_start it is Fast-AT's FGSM-RS (Wong et al.)."""
    return pgd_linf(model, x, y, eps=eps, step_size=eps if step_size is None else step_size, steps=1,
                    random_start=random_start, generator=generator)
