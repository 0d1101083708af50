"""The adversarial-training methods the paper compares MixACM against (Tables 1 and 2), run under the same trainer,
data and evaluator as MixACM so that the comparison is like for like (the paper quotes their numbers from the cited
papers' own code bases).

Losses are pure functions over logits (each cites its paper's equation); step functions follow the trainer's
contract ``step(ctx, x, y) -> StepOutput`` (mixacm.steps). A step that must act after the optimiser step (AWP
removes its weight perturbation, Free-AT carries its input perturbation to the next replay) returns ``post_step``.

Each step takes the step of its official code on a BatchNorm network: clean and adversarial inputs go through the
network in separate forwards, in the code's order (each forward has its own batch statistics and moves the running
statistics once), inside ONE call of the student module, since DDP allows one forward call per backward. Where a
code runs a forward only for its BatchNorm side effect (TRADES's second clean forward, Rice et al.'s logging
forwards), the step runs it without gradients. The attack starts where the code starts it (clamped to [0,1] or not).

    trades      Zhang et al. 2019, eq. (5): CE(f(x), y) + beta * KL(f(x) || f(x')), x' = PGD-10 on that KL from
                x + 0.001 N(0, I) (not clamped), eval-mode BatchNorm, beta = 6; forwards x, x', x.
    mart        Wang et al. 2020, eq. (7): BCE(f(x'), y) + lambda * KL(f(x) || f(x')) (1 - p_y(x)), x' = PGD-10 on
                CE from x + 0.001 N(0, I) (not clamped), lambda = 6; forwards x, x'.
    awp         Wu et al. 2020: adversarial weight perturbation v_l = gamma ||w_l|| g_l / ||g_l|| (one ascent step on
                the base loss, per layer, weights of dim > 1 only; the perturbing forwards leave the running
                statistics alone, as the code's proxy model does), on top of TRADES (default; the Table 1 row,
                "TRADES-AWP": forwards x', x, x) or PGD-AT ("AT-AWP": forward x'); v added before the training
                forwards and removed after the optimiser step; off during the first ``awp_warmup_epochs``.
    fat         Zhang et al. 2020 ("friendly" adversarial training): early-stopped PGD from x + 0.001 N(0, I)
                (clamped) that stops tau steps after a point is misclassified, with the TRADES loss (the Table 1 row
                is FAT for TRADES); tau fixed or raised over training (``fat_tau_milestones``); forwards x, x'.
    free_at     Shafahi et al. 2019: each minibatch replayed m times (``free_replays``, 8 on CIFAR, 4 on ImageNet),
                one signed-gradient step of size eps on the input perturbation per replay with the gradient through
                the clamp to [0,1] (zero where x + delta leaves it), the perturbation carried across replays and
                minibatches; epochs divided by m.
    ARD (Goldblum et al. 2020) is a step of mixacm.methods; its loss is ``ard_loss`` here.
    at_early_stop / bot_trades are PGD-AT / TRADES with other hyper-parameters (Rice et al. 2020, Pang et al. 2021);
                their settings are configs (``configs/table1/``), not code.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .steps import StepContext, StepOutput

TRADES_INIT_STD = 0.001  # x' starts at x + 0.001 N(0, I) (TRADES and MART code)


# ----------------------------------------------------------------------------------------------------- losses
def _wide(t: Tensor) -> Tensor:
    """bf16/fp16 logits (autocast) -> fp32 for the loss; fp32 and fp64 stay as they are."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def trades_kl(logits_nat: Tensor, logits_adv: Tensor) -> Tensor:
    """KL(f(x) || f(x')), summed over classes, averaged over the batch (TRADES eq. (5) boundary term)."""
    p_nat = F.softmax(_wide(logits_nat), dim=1)
    return F.kl_div(F.log_softmax(_wide(logits_adv), dim=1), p_nat, reduction="batchmean")


def trades_loss(logits_nat: Tensor, logits_adv: Tensor, y: Tensor, beta: float) -> tuple[Tensor, Tensor, Tensor]:
    """TRADES eq. (5): CE(f(x), y) + beta * KL(f(x) || f(x')). Returns (loss, ce, kl)."""
    ce = F.cross_entropy(_wide(logits_nat), y)
    kl = trades_kl(logits_nat, logits_adv)
    return ce + beta * kl, ce, kl


def mart_loss(logits_nat: Tensor, logits_adv: Tensor, y: Tensor, lam: float) -> tuple[Tensor, Tensor, Tensor]:
    """MART eq. (7): BCE(p(x'), y) + lambda * mean_i [ KL(p(x_i) || p(x'_i)) * (1 - p_y(x_i)) ], with
    BCE(p, y) = -log p_y - log(1 - max_{k != y} p_k). The small constants are the MART code's (1.0001 and 1e-12 in
    the logs, 1.0000001 in the weight): they keep the logs finite and change nothing else. Returns (loss, bce, kl)."""
    p_adv = F.softmax(_wide(logits_adv), dim=1)  # (B, K)
    p_nat = F.softmax(_wide(logits_nat), dim=1)
    others = p_adv.scatter(1, y[:, None], 0.0)  # (B, K): the true class masked out
    margin = -torch.log(1.0001 - others.amax(dim=1) + 1e-12)  # (B,)
    bce = F.cross_entropy(_wide(logits_adv), y) + margin.mean()
    kl_i = (torch.xlogy(p_nat, p_nat) - p_nat * torch.log(p_adv + 1e-12)).sum(1)  # (B,)
    true_p = p_nat.gather(1, y[:, None]).squeeze(1)
    kl = (kl_i * (1.0000001 - true_p)).mean()
    return bce + lam * kl, bce, kl


def ard_loss(logits_adv: Tensor, logits_nat: Tensor, teacher_logits: Tensor, y: Tensor, alpha: float,
             temperature: float) -> tuple[Tensor, Tensor, Tensor]:
    """ARD (Goldblum et al. 2020, Sec. 3): (1 - alpha) CE(S(x), y) + alpha t^2 KL(T_t(x) || S_t(x')), with S_t, T_t
    the temperature-t softmax of student and teacher. The KL is averaged over batch AND classes, as ARD's code
    computes it (``nn.KLDivLoss()`` with its default mean): 1/K of a per-example KL. Returns (loss, ce, kl)."""
    t = temperature
    kl = F.kl_div(F.log_softmax(_wide(logits_adv) / t, dim=1), F.softmax(_wide(teacher_logits) / t, dim=1),
                  reduction="sum") / logits_adv.numel()
    ce = F.cross_entropy(_wide(logits_nat), y)
    return alpha * t * t * kl + (1.0 - alpha) * ce, ce, kl


# ----------------------------------------------------------------------------------------------------- attacks
@contextlib.contextmanager
def craft_mode(model: nn.Module, bn: str):
    """The student's mode while a method crafts its attack (``TrainConfig.attack_bn``): "eval" or "train"; the mode
    it had is restored after."""
    was = model.training
    model.train(bn == "train")
    try:
        yield model
    finally:
        model.train(was)


def bn_pass(model: nn.Module, x: Tensor) -> None:
    """A train-mode forward without gradients: it only moves the BatchNorm running statistics, as a forward that an
    official code runs for a target or a log does."""
    was = model.training
    model.train()
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was)


def _start(x: Tensor, eps: float, start: str, clamp: bool, generator: torch.Generator | None) -> Tensor:
    if start == "normal":  # x + 0.001 N(0, I) (TRADES, MART, AWP-TRADES, FAT)
        noise = TRADES_INIT_STD * torch.randn(x.shape, generator=generator, device="cpu").to(x)
    else:  # x + U(-eps, eps) (ARD)
        noise = (torch.rand(x.shape, generator=generator, device="cpu").to(x) * 2 - 1) * eps
    return (x + noise).clamp(0, 1) if clamp else x + noise


def friendly_pgd(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, step_size: float, max_steps: int,
                 tau: int | None, loss: str = "ce", target_logits: Tensor | None = None,
                 generator: torch.Generator | None = None, start: str = "normal", clamp_start: bool = True
                 ) -> Tensor:
    """PGD in the l-inf ball from x + 0.001 N(0, I) (``start="normal"``) or x + U(-eps, eps) ("uniform"), the start
    clamped to [0,1] or not (``clamp_start``), each step projected on the ball and [0,1]. With ``tau`` (FAT, Zhang et
    al. 2020, Alg. 1), a point stops being perturbed ``tau`` steps after it is first misclassified; ``tau=None`` runs
    all ``max_steps`` (TRADES, MART, ARD). loss: "ce" on y, or "kl" to ``target_logits`` (TRADES)."""
    x = x.detach()
    x_adv = _start(x, eps, start, clamp_start, generator)
    budget = torch.full((len(x),), tau if tau is not None else max_steps + 1, device=x.device)  # (B,)
    for _ in range(max_steps):
        x_adv.requires_grad_(True)
        logits = model(x_adv)
        if tau is not None:
            wrong = logits.detach().argmax(1) != y
            budget = torch.where(wrong, budget - 1, budget)
        active = (budget >= 0).view(-1, *([1] * (x.dim() - 1)))  # (B, 1, 1, 1)
        if loss == "kl":
            obj = F.kl_div(F.log_softmax(_wide(logits), 1), F.softmax(_wide(target_logits), 1), reduction="sum")
        else:
            obj = F.cross_entropy(_wide(logits), y, reduction="sum")
        (grad,) = torch.autograd.grad(obj, x_adv)
        step = torch.where(active, step_size * grad.sign(), torch.zeros_like(grad))
        x_adv = torch.min(torch.max(x_adv.detach() + step, x - eps), x + eps).clamp(0, 1)
        if tau is not None and not bool((budget >= 0).any()):
            break
    return x_adv.detach()


def fat_tau(cfg, epoch: int) -> int:
    """FAT's tau at 0-based ``epoch``: ``fat_tau``, or with ``fat_tau_milestones`` the number of milestones (fractions
    of training) already passed, at most ``fat_tau``."""
    if cfg.fat_tau_milestones is None:
        return cfg.fat_tau
    passed = sum(epoch >= m * cfg.epochs - 1e-9 for m in cfg.fat_tau_milestones)
    return min(cfg.fat_tau, passed)


# ------------------------------------------------------------------------------------------------------- steps
def _trades_inputs(ctx: StepContext, x: Tensor, y: Tensor, tau: int | None, clamp_start: bool) -> Tensor:
    c = ctx.cfg
    with craft_mode(ctx.student_module, c.attack_bn) as m:
        with torch.no_grad():
            target = m(x)
        return friendly_pgd(m, x, y, eps=c.eps, step_size=c.attack_step, max_steps=c.attack_steps, tau=tau,
                            loss="kl", target_logits=target, generator=ctx.generator, clamp_start=clamp_start)


def trades_step(ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
    x_adv = _trades_inputs(ctx, x, y, tau=None, clamp_start=False)
    # TRADES code: model(x) for the CE, model(x') and model(x) again for the KL; the third forward gives the first's
    # logits, so it runs without gradients, for its move of the running statistics
    s_nat, s_adv = ctx.student(x, x_adv)
    bn_pass(ctx.student_module, x)
    loss, ce, kl = trades_loss(s_nat, s_adv, y, ctx.cfg.trades_beta)
    return StepOutput(loss, {"ce": ce.detach(), "kl": kl.detach()}, s_adv)


def fat_step(ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
    x_adv = _trades_inputs(ctx, x, y, tau=fat_tau(ctx.cfg, ctx.epoch), clamp_start=True)
    s_nat, s_adv = ctx.student(x, x_adv)  # FAT-for-TRADES code: natural, then adversarial
    loss, ce, kl = trades_loss(s_nat, s_adv, y, ctx.cfg.trades_beta)
    return StepOutput(loss, {"ce": ce.detach(), "kl": kl.detach()}, s_adv)


def mart_step(ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
    c = ctx.cfg
    with craft_mode(ctx.student_module, c.attack_bn) as m:
        x_adv = friendly_pgd(m, x, y, eps=c.eps, step_size=c.attack_step, max_steps=c.attack_steps, tau=None,
                             generator=ctx.generator, clamp_start=False)
    s_nat, s_adv = ctx.student(x, x_adv)
    loss, bce, kl = mart_loss(s_nat, s_adv, y, c.mart_lambda)
    return StepOutput(loss, {"bce": bce.detach(), "kl": kl.detach()}, s_adv)


def awp_perturbation(model: nn.Module, loss_fn, gamma: float) -> dict[str, Tensor]:
    """AWP's weight perturbation: per weight tensor of dim > 1, v = gamma ||w|| g / ||g|| with g the gradient of
    ``loss_fn(model)`` in train mode (one normalised ascent step; Wu et al. 2020, Alg. 1). The forwards use batch
    statistics but do not move the model's running statistics (the AWP code's proxy model). Averaged across ranks
    under DDP so every rank perturbs alike."""
    import torch.distributed as dist

    names = [n for n, p in model.named_parameters() if p.requires_grad and p.dim() > 1]
    params = dict(model.named_parameters())
    buffers = {n: b.clone() for n, b in model.named_buffers()}  # the extra forwards update copies only
    with craft_mode(model, "train"):
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
    # autocast keeps low-precision copies of the weights for the rest of its region, made by the attack's forwards;
    # they are stale once the weights move
    torch.clear_autocast_cache()


def awp_step(ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
    c = ctx.cfg
    base_trades = c.awp_base == "trades"
    if base_trades:
        x_adv = _trades_inputs(ctx, x, y, tau=None, clamp_start=False)
    else:  # AT-AWP code: Rice et al.'s PGD (uniform start, clamped)
        from .attacks import pgd_linf
        with craft_mode(ctx.student_module, c.attack_bn) as m:
            x_adv = pgd_linf(m, x, y, eps=c.eps, step_size=c.attack_step, steps=c.attack_steps, random_start=True,
                             generator=ctx.generator)
        if c.bn_logging_passes:
            bn_pass(ctx.student_module, x_adv)
    v: dict[str, Tensor] = {}
    if ctx.epoch >= c.awp_warmup_epochs and c.awp_gamma > 0:
        def base_loss(f):
            if base_trades:
                return trades_loss(f(x), f(x_adv), y, c.trades_beta)[0]
            return F.cross_entropy(_wide(f(x_adv)), y)
        v = awp_perturbation(ctx.student_module, base_loss, c.awp_gamma)
        _shift_weights(ctx.student_module, v, +1.0)
    if base_trades:
        # TRADES-AWP code: model(x') and model(x) for the KL, then model(x) again for the CE (same logits)
        s_adv, s_nat = ctx.student(x_adv, x)
        bn_pass(ctx.student_module, x)
        loss, ce, kl = trades_loss(s_nat, s_adv, y, c.trades_beta)
        terms = {"ce": ce.detach(), "kl": kl.detach()}
    else:
        s_adv = ctx.student(x_adv)
        loss = F.cross_entropy(_wide(s_adv), y)
        terms = {"ce": loss.detach()}

    def after() -> None:  # after the optimiser step: AWP code restores the weights after optimizer.step()
        if v:
            _shift_weights(ctx.student_module, v, -1.0)
        if not base_trades and c.bn_logging_passes:  # AT-AWP code: clean-batch accuracy after the restore
            bn_pass(ctx.student_module, x)

    return StepOutput(loss, terms, s_adv, post_step=after if v or (not base_trades and c.bn_logging_passes) else None)


def free_at_step(ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
    """One replay of Free-AT: train on clamp(x + delta, 0, 1); after the optimiser step, delta <- clip(delta +
    eps sign(grad_delta)) with the gradient of that same backward pass (no extra pass: the 'free' of the name). The
    gradient is taken with respect to delta through the clamp, as in both official codes, so it is zero where
    x + delta is outside [0,1] and delta stays there."""
    c = ctx.cfg
    delta = ctx.extras.get("free_delta")
    if delta is None or delta.shape != x.shape:
        delta = torch.zeros_like(x)
    delta = delta.detach().requires_grad_(True)
    logits = ctx.student((x + delta).clamp(0, 1))
    loss = F.cross_entropy(_wide(logits), y)

    def carry() -> None:
        if delta.grad is not None:
            ctx.extras["free_delta"] = (delta + c.eps * delta.grad.sign()).clamp(-c.eps, c.eps).detach()

    return StepOutput(loss, {"ce": loss.detach()}, logits, post_step=carry)


__all__ = ["trades_kl", "trades_loss", "mart_loss", "ard_loss", "friendly_pgd", "fat_tau", "craft_mode", "bn_pass",
           "awp_perturbation", "trades_step", "mart_step", "awp_step", "fat_step", "free_at_step"]
