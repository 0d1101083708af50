"""l-inf attacks on models that map [0,1] images to logits (shared by training and evaluation).

The paper's evaluation (main paper Sec. 6, "Evaluation of Robustness"; Tables 1-5): FGSM, PGD-k with the standard
step size 2/255 and k up to 500, AutoAttack (standard) and its parts APGD-CE, APGD-DLR, FAB, Square. CW-inf
(margin-loss PGD) is added as the usual extra white-box check. AutoAttack parts are the real ``pyautoattack`` code,
wrapped in :mod:`mixacm.autoattack_runner`; nothing of it is re-implemented here.

``ATTACKS`` is the explicit table name -> constructor of an :class:`AttackSpec`; ``parse_attack`` also accepts
``pgd-K``/``pgdK``/``pgdKxR`` (K steps, R restarts) and ``cw-K``/``cwK``/``cwKxR``.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PGD_STEP_SIZE = 2 / 255  # Sec. 6: "the standard value of step size (2/255)"
AA_PARTS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")


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
    start_noise: Tensor | None = None,
) -> Tensor:
    """PGD (Madry et al.) in the l-inf ball of radius eps around x, clipped to [0,1].

    loss: "ce" (cross-entropy), "cw" (margin), or "kl" (KL to ``target_logits``; TRADES/ARD style).
    start_noise: the U[0,1) draws of the random start (shape of x), drawn by the caller (the evaluator draws them
    per logical block, ``BlockNoise``); None draws them from ``generator``.
    Returns the adversarial input, detached; the model's train/eval mode is left as it was.
    """
    x = x.detach()
    delta = torch.zeros_like(x)
    if random_start and start_noise is not None:
        delta = (start_noise.to(x) * 2 - 1) * eps
    elif random_start:
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


@torch.no_grad()
def _still_correct(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return model(x).argmax(1) == y  # (B,) bool


def pgd_restarts(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    step_size: float = PGD_STEP_SIZE,
    steps: int,
    restarts: int = 1,
    loss: str = "ce",
    generator: torch.Generator | None = None,
    noise: BlockNoise | None = None,
) -> Tensor:
    """PGD with random restarts: each restart attacks only the points not yet misclassified; per sample the first
    successful adversarial input is kept (the last restart's otherwise). ``noise``: random starts drawn per logical
    block (the evaluator's physical batches); None draws them from ``generator``."""
    if restarts < 1:
        raise ValueError(f"restarts={restarts} must be >= 1")
    x_best = x.detach().clone()
    todo = torch.ones(len(x), dtype=torch.bool, device=x.device)  # (B,) points still classified correctly
    for _ in range(restarts):
        idx = todo.nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        start = noise.draw(idx, x.shape) if noise is not None else None
        x_adv = pgd_linf(model, x[idx], y[idx], eps=eps, step_size=step_size, steps=steps,
                         random_start=True, loss=loss, generator=generator, start_noise=start)
        x_best[idx] = x_adv
        todo[idx] = _still_correct(model, x_adv, y[idx])
    return x_best


class BlockNoise:
    """Random starts of one physical attack batch made of consecutive logical blocks (the evaluator's
    ``batch_size``), each block drawing its U[0,1) noise from its own generator, in the order and amounts a run of
    that block alone draws it: the noise, and so the result, does not depend on how blocks are batched together.

    ``generators[i]`` and ``sizes[i]``: block i's generator and its number of points (blocks in batch order)."""

    def __init__(self, generators: list[torch.Generator], sizes: list[int]):
        if len(generators) != len(sizes):
            raise ValueError("one generator per block")
        self.generators, self.sizes = list(generators), [int(n) for n in sizes]
        self.bounds = torch.tensor([0, *self.sizes]).cumsum(0)  # block i holds points bounds[i] .. bounds[i+1]-1

    def draw(self, idx: Tensor, shape: torch.Size | tuple[int, ...]) -> Tensor:
        """(len(idx), *shape[1:]) U[0,1) draws on the CPU for the points ``idx`` (sorted, of the whole batch):
        block i draws for its points among idx, from its generator."""
        idx = idx.detach().cpu()
        block = torch.bucketize(idx, self.bounds[1:], right=True)  # (n,) block of each point
        parts = [torch.rand((int((block == i).sum()), *shape[1:]), generator=g, device="cpu")
                 for i, g in enumerate(self.generators)]
        return torch.cat(parts) if parts else torch.empty((0, *shape[1:]))


@dataclass(frozen=True)
class AttackSpec:
    """One evaluation attack. kind: "fgsm" | "pgd" (loss ce) | "cw" (PGD on the margin) | "aa" (pyautoattack)."""

    name: str
    kind: str
    steps: int = 0
    restarts: int = 1
    step_size: float | None = None  # None: eps for FGSM, PGD_STEP_SIZE for PGD/CW
    aa_parts: tuple[str, ...] = field(default_factory=tuple)  # () with kind "aa" = standard AutoAttack
    white_box: bool = True

    def to_json(self) -> dict:
        d = asdict(self)
        d["aa_parts"] = list(self.aa_parts)
        return d


def _pgd(steps: int, restarts: int = 1, name: str | None = None) -> AttackSpec:
    return AttackSpec(name or f"pgd{steps}", "pgd", steps=steps, restarts=restarts)


def _cw(steps: int, restarts: int = 1, name: str | None = None) -> AttackSpec:
    return AttackSpec(name or f"cw{steps}", "cw", steps=steps, restarts=restarts)


def _aa_part(part: str) -> Callable[[], AttackSpec]:
    return lambda: AttackSpec(part, "aa", aa_parts=(part,), white_box=part != "square")


# name -> constructor. Explicit table (no registration); the paper's Tables 1-5 use all of these.
ATTACKS: dict[str, Callable[[], AttackSpec]] = {
    "fgsm": lambda: AttackSpec("fgsm", "fgsm", steps=1),
    "pgd5": lambda: _pgd(5),
    "pgd7": lambda: _pgd(7),
    "pgd10": lambda: _pgd(10),
    "pgd20": lambda: _pgd(20),
    "pgd50": lambda: _pgd(50),
    "pgd100": lambda: _pgd(100),
    "pgd500": lambda: _pgd(500),
    "cw20": lambda: _cw(20),
    "apgd-ce": _aa_part("apgd-ce"),
    "apgd-dlr": _aa_part("apgd-dlr"),
    "apgd-t": _aa_part("apgd-t"),
    "fab": _aa_part("fab"),
    "fab-t": _aa_part("fab-t"),
    "square": _aa_part("square"),
    "autoattack": lambda: AttackSpec("autoattack", "aa", aa_parts=(), white_box=True),
}

_PARAM_RE = re.compile(r"^(pgd|cw)-?(\d+)(?:x(\d+))?$")


def parse_attack(name: str) -> AttackSpec:
    """Name -> spec: a key of ATTACKS, or pgd-K / pgdKxR / cw-K (K steps, R restarts). One-line error otherwise."""
    key = name.strip().lower()
    if key in ATTACKS:
        return ATTACKS[key]()
    m = _PARAM_RE.match(key)
    if m:
        steps, restarts = int(m.group(2)), int(m.group(3) or 1)
        if steps < 1 or restarts < 1:
            raise ValueError(f"attack {name!r}: steps and restarts must be >= 1")
        build = _pgd if m.group(1) == "pgd" else _cw
        canonical = f"{m.group(1)}{steps}" + (f"x{restarts}" if restarts > 1 else "")
        return build(steps, restarts, name=canonical)
    raise ValueError(f"unknown attack {name!r}; valid: {', '.join(ATTACKS)} (or pgd-K, pgdKxR, cw-K)")


def parse_eps(eps: float | str, *, key: str = "eps", error: type[Exception] = ValueError) -> float:
    """An l-inf radius on the [0,1] pixel scale, the one parser of radii (the evaluator's eps and the config's eps and
    attack_step, ``mixacm.config.parse_eps``): "8/255" -> 0.0313..; "0.0314" or 0.0314 -> 0.0314. Rejected: what is
    not a number, not finite or negative, and values >= 1, which cover the whole [0,1] image (a unit mistake: 8 for
    8/255); the message names the fix. ``key``: the field named in the message; ``error``: the exception raised."""
    if isinstance(eps, str):
        txt = eps.strip()
        try:
            if "/" in txt:
                num, den = txt.split("/")
                value = float(num) / float(den)
            else:
                value = float(txt)
        except (ValueError, ZeroDivisionError):
            raise error(f"{key}={eps!r} is not a number; write e.g. {key}=8/255 or {key}=0.0314") from None
    else:
        try:
            if isinstance(eps, bool):
                raise TypeError
            value = float(eps)
        except (TypeError, ValueError):
            raise error(f"{key}={eps!r} must be a number such as 8/255") from None
    if not math.isfinite(value) or value < 0:
        raise error(f"{key}={eps!r} must be a finite number >= 0, e.g. 8/255")
    if value >= 1:
        raise error(f"{key}={eps!r} is >= 1 but inputs are in [0,1]: did you mean {value:g}/255?")
    return value


def run_white_box(spec: AttackSpec, model: nn.Module, x: Tensor, y: Tensor, *, eps: float,
                  generator: torch.Generator | None = None, noise: BlockNoise | None = None) -> Tensor:
    """Adversarial inputs for an FGSM/PGD/CW spec (AutoAttack specs go through mixacm.autoattack_runner).
    ``noise``: PGD/CW random starts drawn per logical block (``BlockNoise``) instead of from ``generator``."""
    if spec.kind == "fgsm":
        return fgsm(model, x, y, eps=eps, step_size=spec.step_size, generator=generator)
    if spec.kind in ("pgd", "cw"):
        return pgd_restarts(model, x, y, eps=eps, step_size=spec.step_size or PGD_STEP_SIZE, steps=spec.steps,
                            restarts=spec.restarts, loss="ce" if spec.kind == "pgd" else "cw", generator=generator,
                            noise=noise)
    raise ValueError(f"run_white_box cannot run kind {spec.kind!r}; use mixacm.autoattack_runner.run_autoattack")
