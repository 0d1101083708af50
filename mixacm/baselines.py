"""The adversarial-training methods the paper compares MixACM against (Tables 1 and 2), run under the same trainer,
data and evaluator as MixACM so that the comparison is like for like (the paper quotes their numbers from the cited
papers' own code bases).

Losses are pure functions over logits (each cites its paper's equation); step functions follow the trainer's
contract ``step(ctx, x, y) -> StepOutput`` (mixacm.methods). A step that must act after the optimiser step (AWP
removes its weight perturbation, Free-AT carries its input perturbation to the next replay) returns ``post_step``.

    trades      Zhang et al. 2019, eq. (5): CE(f(x), y) + beta * KL(f(x) || f(x')), x' = PGD-10 on that KL from
                x + 0.001 N(0, I), step 0.007, beta = 6 (their CIFAR-10 setting).
    mart        Wang et al. 2020, eq. (7): BCE(f(x'), y) + lambda * KL(f(x) || f(x')) (1 - p_y(x)), x' = PGD-10 on
                CE from x + 0.001 N(0, I), lambda = 6 (their WRN-34-10 setting).
    awp         Wu et al. 2020: adversarial weight perturbation v_l = gamma ||w_l|| g_l / ||g_l|| (one ascent step on
                the base loss, per layer, weights of dim > 1 only), gamma = 5e-3, on top of TRADES (default; the
                Table 1 row, "TRADES-AWP") or PGD-AT; v added before the training loss and removed after the
                optimiser step; off during the first ``awp_warmup_epochs`` (10).
    fat         Zhang et al. 2020 ("friendly" adversarial training): early-stopped PGD that stops tau steps after a
                point is misclassified (tau = 3), with the TRADES loss (the Table 1 row is FAT for TRADES).
    free_at     Shafahi et al. 2019: each minibatch replayed m times (``free_replays``, 8 on CIFAR, 4 on ImageNet),
                one signed-gradient step of size eps on the input perturbation per replay, the perturbation carried
                across replays and minibatches; epochs divided by m.
    at_early_stop / bot_trades are PGD-AT / TRADES with other hyper-parameters (Rice et al. 2020: PGD-10, piecewise
                schedule, best checkpoint by held-out robust accuracy; Pang et al. 2021: TRADES with weight decay
                5e-4, piecewise schedule, eval-mode BN for the attack); their settings are configs, not code.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:  # mixacm.methods imports this module for its METHODS table
    from .methods import StepContext, StepOutput

TRADES_INIT_STD = 0.001  # x' starts at x + 0.001 N(0, I) (TRADES and MART code)


# ----------------------------------------------------------------------------------------------------- losses
def trades_kl(logits_nat: Tensor, logits_adv: Tensor) -> Tensor:
    """KL(f(x) || f(x')), summed over classes, averaged over the batch (TRADES eq. (5) boundary term)."""
    p_nat = F.softmax(logits_nat.float(), dim=1)
    return F.kl_div(F.log_softmax(logits_adv.float(), dim=1), p_nat, reduction="batchmean")


def trades_loss(logits_nat: Tensor, logits_adv: Tensor, y: Tensor, beta: float) -> tuple[Tensor, Tensor, Tensor]:
    """TRADES eq. (5): CE(f(x), y) + beta * KL(f(x) || f(x')). Returns (loss, ce, kl)."""
    ce = F.cross_entropy(logits_nat.float(), y)
    kl = trades_kl(logits_nat, logits_adv)
    return ce + beta * kl, ce, kl


def mart_loss(logits_nat: Tensor, logits_adv: Tensor, y: Tensor, lam: float) -> tuple[Tensor, Tensor, Tensor]:
    """MART eq. (7): BCE(p(x'), y) + lambda * mean_i [ KL(p(x_i) || p(x'_i)) * (1 - p_y(x_i)) ], with
    BCE(p, y) = -log p_y - log(1 - max_{k != y} p_k). Returns (loss, bce, weighted kl)."""
    p_adv = F.softmax(logits_adv.float(), dim=1)  # (B, K)
    p_nat = F.softmax(logits_nat.float(), dim=1)
    others = p_adv.scatter(1, y[:, None], 0.0)  # (B, K): the true class masked out
    margin = -torch.log(1.0001 - others.amax(dim=1))  # (B,): MART code's 1.0001 keeps the log finite
    bce = F.cross_entropy(logits_adv.float(), y) + margin.mean()
    kl_i = (p_nat * (torch.log(p_nat + 1e-12) - F.log_softmax(logits_adv.float(), dim=1))).sum(1)  # (B,)
    true_p = p_nat.gather(1, y[:, None]).squeeze(1)
    kl = (kl_i * (1.0 - true_p)).mean()
    return bce + lam * kl, bce, kl


# ----------------------------------------------------------------------------------------------------- attacks
def _normal_start(x: Tensor, std: float, generator: torch.Generator | None) -> Tensor:
    noise = torch.randn(x.shape, generator=generator, device="cpu").to(x)
    return (x + std * noise).clamp(0, 1)


def friendly_pgd(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, step_size: float, max_steps: int,
                 tau: int | None, loss: str = "ce", target_logits: Tensor | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
    """PGD in the l-inf ball from x + 0.001 N(0, I). With ``tau`` (FAT, Zhang et al. 2020, Alg. 1), a point stops
    being perturbed ``tau`` steps after it is first misclassified; ``tau=None`` runs all ``max_steps`` (TRADES,
    MART). loss: "ce" on y, or "kl" to ``target_logits`` (TRADES)."""
    x = x.detach()
    x_adv = _normal_start(x, TRADES_INIT_STD, generator)
    budget = torch.full((len(x),), tau if tau is not None else max_steps + 1, device=x.device)  # (B,)
    for _ in range(max_steps):
        x_adv.requires_grad_(True)
        logits = model(x_adv)
        if tau is not None:
            wrong = logits.detach().argmax(1) != y
            budget = torch.where(wrong, budget - 1, budget)
        active = (budget >= 0).view(-1, *([1] * (x.dim() - 1)))  # (B, 1, 1, 1)
        if loss == "kl":
            obj = F.kl_div(F.log_softmax(logits.float(), 1), F.softmax(target_logits.float(), 1), reduction="sum")
        else:
            obj = F.cross_entropy(logits.float(), y, reduction="sum")
        (grad,) = torch.autograd.grad(obj, x_adv)
        step = torch.where(active, step_size * grad.sign(), torch.zeros_like(grad))
        x_adv = torch.min(torch.max(x_adv.detach() + step, x - eps), x + eps).clamp(0, 1)
        if tau is not None and not bool((budget >= 0).any()):
            break
    return x_adv.detach()


# ------------------------------------------------------------------------------------------------------- steps
def _eval_mode(model: nn.Module):
    from .methods import _eval_mode as ctx_manager
    return ctx_manager(model)


def _output(*args, **kw) -> StepOutput:
    from .methods import StepOutput
    return StepOutput(*args, **kw)


def _trades_inputs(ctx: StepContext, x: Tensor, y: Tensor, tau: int | None) -> Tensor:
    c = ctx.cfg
    with _eval_mode(ctx.student_module) as m:  # eval-mode BN while crafting (TRADES code; Pang et al. 2021)
        with torch.no_grad():
            target = m(x)
        return friendly_pgd(m, x, y, eps=c.eps, step_size=c.attack_step, max_steps=c.attack_steps, tau=tau,
                            loss="kl", target_logits=target, generator=ctx.generator)


def _nat_and_adv(ctx: StepContext, x: Tensor, x_adv: Tensor) -> tuple[Tensor, Tensor]:
    both = ctx.student(torch.cat([x, x_adv]))  # one forward: DDP allows one per backward
    return both[: len(x)], both[len(x):]


def trades_step(ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
    x_adv = _trades_inputs(ctx, x, y, tau=None)
    s_nat, s_adv = _nat_and_adv(ctx, x, x_adv)
    loss, ce, kl = trades_loss(s_nat, s_adv, y, ctx.cfg.trades_beta)
    return _output(loss, {"ce": ce.detach(), "kl": kl.detach()}, s_adv)


def fat_step(ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
    x_adv = _trades_inputs(ctx, x, y, tau=ctx.cfg.fat_tau)
    s_nat, s_adv = _nat_and_adv(ctx, x, x_adv)
    loss, ce, kl = trades_loss(s_nat, s_adv, y, ctx.cfg.trades_beta)
    return _output(loss, {"ce": ce.detach(), "kl": kl.detach()}, s_adv)


def mart_step(ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
    c = ctx.cfg
    with _eval_mode(ctx.student_module) as m:
        x_adv = friendly_pgd(m, x, y, eps=c.eps, step_size=c.attack_step, max_steps=c.attack_steps, tau=None,
                             generator=ctx.generator)
    s_nat, s_adv = _nat_and_adv(ctx, x, x_adv)
    loss, bce, kl = mart_loss(s_nat, s_adv, y, c.mart_lambda)
    return _output(loss, {"bce": bce.detach(), "kl": kl.detach()}, s_adv)


def awp_perturbation(model: nn.Module, loss_fn, gamma: float) -> dict[str, Tensor]:
    """AWP's weight perturbation: per weight tensor of dim > 1, v = gamma ||w|| g / ||g|| with g the gradient of
    ``loss_fn(model)`` (one normalised ascent step; Wu et al. 2020, Alg. 1). Buffers (BN statistics) are not
    changed by the extra forward pass. Averaged across ranks under DDP so every rank perturbs alike."""
    import torch.distributed as dist

    names = [n for n, p in model.named_parameters() if p.requires_grad and p.dim() > 1]
    params = dict(model.named_parameters())
    buffers = {n: b.clone() for n, b in model.named_buffers()}  # the extra forward updates copies only
    out = loss_fn(lambda inp: torch.func.functional_call(model, ({**params, **buffers}), (inp,)))
    grads = torch.autograd.grad(out, [params[n] for n in names])
    v = {}
    for n, g in zip(names, grads):
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(g)
            g = g / dist.get_world_size()
        w = params[n].detach()
        v[n] = gamma * w.norm() * g / (g.norm() + 1e-20)
    return v


def _shift_weights(model: nn.Module, v: dict[str, Tensor], sign: float) -> None:
    with torch.no_grad():
        params = dict(model.named_parameters())
        for n, d in v.items():
            params[n].add_(d, alpha=sign)


def awp_step(ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
    c = ctx.cfg
    base_trades = c.awp_base == "trades"
    if base_trades:
        x_adv = _trades_inputs(ctx, x, y, tau=None)
    else:
        from .attacks import pgd_linf
        with _eval_mode(ctx.student_module) as m:
            x_adv = pgd_linf(m, x, y, eps=c.eps, step_size=c.attack_step, steps=c.attack_steps, random_start=True,
                             generator=ctx.generator)
    v: dict[str, Tensor] = {}
    if ctx.epoch >= c.awp_warmup_epochs and c.awp_gamma > 0:
        def base_loss(f):
            if base_trades:
                out = f(torch.cat([x, x_adv]))
                return trades_loss(out[: len(x)], out[len(x):], y, c.trades_beta)[0]
            return F.cross_entropy(f(x_adv).float(), y)
        v = awp_perturbation(ctx.student_module, base_loss, c.awp_gamma)
        _shift_weights(ctx.student_module, v, +1.0)
    if base_trades:
        s_nat, s_adv = _nat_and_adv(ctx, x, x_adv)
        loss, ce, kl = trades_loss(s_nat, s_adv, y, c.trades_beta)
        terms = {"ce": ce.detach(), "kl": kl.detach()}
    else:
        s_adv = ctx.student(x_adv)
        loss = F.cross_entropy(s_adv.float(), y)
        terms = {"ce": loss.detach()}

    def remove() -> None:  # after the optimiser step (AWP code: restore after optimizer.step())
        _shift_weights(ctx.student_module, v, -1.0)

    return _output(loss, terms, s_adv, post_step=remove if v else None)


def free_at_step(ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
    """One replay of Free-AT: train on x + delta; after the optimiser step, delta <- clip(delta + eps sign(grad_x))
    with the input gradient of that same backward pass (no extra pass: the 'free' of the name)."""
    c = ctx.cfg
    delta = ctx.extras.get("free_delta")
    if delta is None or delta.shape != x.shape:
        delta = torch.zeros_like(x)
    x_adv = (x + delta).clamp(0, 1).requires_grad_(True)
    logits = ctx.student(x_adv)
    loss = F.cross_entropy(logits.float(), y)

    def carry() -> None:
        if x_adv.grad is not None:
            ctx.extras["free_delta"] = (delta + c.eps * x_adv.grad.sign()).clamp(-c.eps, c.eps).detach()

    return _output(loss, {"ce": loss.detach()}, logits, post_step=carry)


__all__ = ["trades_kl", "trades_loss", "mart_loss", "friendly_pgd", "awp_perturbation", "trades_step",
           "mart_step", "awp_step", "fat_step", "free_at_step"]
