"""One training step per method: the paper's MixACM objective, its ablations, and the baselines it is compared with.

Every step function has the signature ``step(ctx, x, y) -> StepOutput`` (types in mixacm.steps) and returns the
scalar loss to minimise plus the *unweighted* loss terms (detached) for logging; a switched-off term is logged as
exactly 0.
The teacher is a ``FrozenTeacher`` (mixacm.teachers): always eval, no parameter gradients, forward under no_grad.

    natural  CE on clean inputs.
    pgd_at   CE on PGD-7 inputs (eps 8/255, step 2/255; Madry et al.; Supp. A.1 "Adversarial Training"), crafted in
             eval-mode BatchNorm (``attack_bn="train"``: Madry et al.'s and Rice et al.'s train mode).
    fast_at  CE on FGSM inputs with a uniform random start and step 1.25*eps (Wong et al. 2020, "Fast is better
             than free"); used here for quick robust teachers.
    kd       "RKD" of Tables 1/3: (1-a)*CE + a*gamma^2 KL(teacher_gamma || student_gamma) on clean inputs, no ACM,
             no mixup (= Table 6 "Only KD").
    ard      Goldblum et al. 2020: (1-a)*CE(student(x), y) + a*gamma^2 KL(teacher_gamma(x) || student_gamma(x_adv)),
             the KL averaged over batch and classes (ARD code), x_adv = PGD on the student's CE from x + U(-eps, eps)
             (not clamped, ARD code); forwards x_adv, then x (without gradients when a = 1: it only moves the
             BatchNorm statistics, as ARD's code does).
    mixacm   Sec. 5.4: (1-a_kld)*L_mix + a_kld*L_kld + a_acm*L_acm on ONE mixup batch seen by teacher and student;
             switches use_kd / use_mixup / use_acm / use_ce, blocks, transform, feature_loss ("direct" = Table 8).
             Without KD the KL weight is 0 and the mixup CE gets weight 1 (Supp. Fig. 7b: "without soft labels
             (i.e., alpha_kld = 0)"). "Only ACM" (Table 6) keeps the CE term: its 92.87% clean accuracy needs a
             trained classifier, which the ACM loss alone (normalised channel maps) cannot provide.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import Tensor

from . import baselines as _b
from .attacks import fgsm, pgd_linf
from .config import TrainConfig
from .steps import StepContext, StepFn, StepOutput, feature_term


def _zero(ref: Tensor) -> Tensor:
    return ref.new_zeros(())


def natural_step(ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
    logits = ctx.student(x)
    ce = F.cross_entropy(logits, y)
    return StepOutput(ce, {"ce": ce.detach()}, logits)


def pgd_at_step(ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
    c = ctx.cfg
    with _b.craft_mode(ctx.student_module, c.attack_bn) as m:
        x_adv = pgd_linf(m, x, y, eps=c.eps, step_size=c.attack_step, steps=c.attack_steps, random_start=True,
                         generator=ctx.generator)
    if c.bn_logging_passes:  # Rice et al.'s attack ends with a forward for its loss on x_adv
        _b.bn_pass(ctx.student_module, x_adv)
    logits = ctx.student(x_adv)
    ce = F.cross_entropy(logits, y)
    # Rice et al.'s loop: a forward of the clean batch after the optimiser step, for its accuracy log
    after = (lambda: _b.bn_pass(ctx.student_module, x)) if c.bn_logging_passes else None
    return StepOutput(ce, {"ce": ce.detach()}, logits, post_step=after)


def fast_at_step(ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
    c = ctx.cfg
    with _b.craft_mode(ctx.student_module, "eval") as m:  # Wong et al.: BN statistics untouched by the attack
        x_adv = fgsm(m, x, y, eps=c.eps, random_start=True, step_size=c.fast_at_step * c.eps,
                     generator=ctx.generator)
    logits = ctx.student(x_adv)
    ce = F.cross_entropy(logits, y)
    return StepOutput(ce, {"ce": ce.detach()}, logits)


def _losses():
    # imported lazily so that this module imports even before mixacm.losses exists in a checkout
    from . import losses
    return losses


def _feature_term(ctx: StepContext, feats_t: list[Tensor], feats_s: list[Tensor]) -> Tensor:
    return feature_term(ctx.cfg, feats_t, feats_s, affine=ctx.affine, adapters=ctx.adapters)


def objective_weights(cfg: TrainConfig, *, use_kd: bool, use_ce: bool, use_acm: bool) -> dict[str, float]:
    """Weights of the terms of Sec. 5.4's objective (1 - a_kld) L_mix + a_kld L_kld + a_acm L_acm, keyed by the
    logged term names ("mix", "kld", cfg.feature_loss), with the switches applied: without KD the KL weight is 0 and
    the mixup CE gets weight 1; a switched-off term weighs 0. The one definition: ``distill_objective`` builds its
    loss with it and ``term_weights`` reports it."""
    w_kld = cfg.alpha_kld if use_kd else 0.0
    return {"mix": (1.0 - w_kld) if use_ce else 0.0, "kld": w_kld, cfg.feature_loss: cfg.alpha_acm if use_acm else 0.0}


def distill_objective(ctx: StepContext, x: Tensor, y: Tensor, *, use_kd: bool, use_mixup: bool, use_acm: bool,
                      use_ce: bool = True) -> StepOutput:
    """Sec. 5.4: (1 - a_kld) L_mix + a_kld L_kld + a_acm L_acm, teacher and student on the same mixup batch."""
    from .mixup import mix_batch

    c, L = ctx.cfg, _losses()
    if ctx.teacher is None:
        raise ValueError(f"method {c.method!r} needs a teacher; set teacher=... (RobustBench name, checkpoint, "
                         f"run dir or config:PATH)")
    x_mix, y_a, y_b, lam = mix_batch(x, y, c.mixup_alpha if use_mixup else 0.0, generator=ctx.generator)
    if use_acm:
        t_logits, t_feats = ctx.teacher.forward_intermediates(x_mix)  # frozen: eval, no_grad
        if ctx.feature_term_in_forward:  # learned maps live in the (DDP-wrapped) student module
            s_logits, l_acm = ctx.student(x_mix, teacher_feats=t_feats)
        else:
            s_logits, s_feats = ctx.student(x_mix, features=True)
            l_acm = _feature_term(ctx, t_feats, s_feats)
    else:
        s_logits = ctx.student(x_mix)
        t_logits = ctx.teacher(x_mix) if use_kd else None
        l_acm = _zero(s_logits)
    l_mix = L.mixup_ce(s_logits, y_a, y_b, lam) if use_ce else _zero(s_logits)
    l_kld = L.kd_loss(s_logits, t_logits, temperature=c.temperature) if use_kd else _zero(s_logits)
    w = objective_weights(c, use_kd=use_kd, use_ce=use_ce, use_acm=use_acm)
    loss = w["mix"] * l_mix + w["kld"] * l_kld + w[c.feature_loss] * l_acm
    terms = {"mix": l_mix.detach(), "kld": l_kld.detach(), c.feature_loss: l_acm.detach()}
    return StepOutput(loss, terms, s_logits)


def mixacm_step(ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
    c = ctx.cfg
    return distill_objective(ctx, x, y, use_kd=c.use_kd, use_mixup=c.use_mixup, use_acm=c.use_acm, use_ce=c.use_ce)


def kd_step(ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
    """RKD / "Only KD": soft labels on clean inputs, no mixup, no ACM (the switches are ignored by design)."""
    return distill_objective(ctx, x, y, use_kd=True, use_mixup=False, use_acm=False, use_ce=True)


def ard_step(ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
    c = ctx.cfg
    if ctx.teacher is None:
        raise ValueError("method 'ard' needs a teacher; set teacher=...")
    with _b.craft_mode(ctx.student_module, c.attack_bn) as m:
        x_adv = _b.friendly_pgd(m, x, y, eps=c.eps, step_size=c.attack_step, max_steps=c.attack_steps, tau=None,
                                generator=ctx.generator, start="uniform", clamp_start=False)
    t_logits = ctx.teacher(x)  # teacher on CLEAN inputs (ARD)
    if c.alpha_kld < 1.0:
        s_adv, s_nat = ctx.student(x_adv, x)
    else:  # ARD's CIFAR setting alpha = 1: the clean CE has weight 0; its forward still moves BatchNorm statistics
        s_adv = ctx.student(x_adv)
        with torch.no_grad():
            s_nat = ctx.student_module(x)
    loss, ce, kld = _b.ard_loss(s_adv, s_nat, t_logits, y, c.alpha_kld, c.temperature)
    return StepOutput(loss, {"ce": ce.detach(), "kld": kld.detach()}, s_adv)


METHODS: dict[str, StepFn] = {
    "natural": natural_step,
    "pgd_at": pgd_at_step,
    "fast_at": fast_at_step,
    "kd": kd_step,
    "ard": ard_step,
    "mixacm": mixacm_step,
    "trades": _b.trades_step,
    "mart": _b.mart_step,
    "awp": _b.awp_step,
    "fat": _b.fat_step,
    "free_at": _b.free_at_step,
}
NEEDS_TEACHER = {"kd", "ard", "mixacm"}


def term_weights(cfg: TrainConfig) -> dict[str, float]:
    """Weight of each logged term in the loss (Sec. 5.4 for MixACM); {} where terms are not a weighted sum."""
    if cfg.method != "mixacm":
        return {}
    return objective_weights(cfg, use_kd=cfg.use_kd, use_ce=cfg.use_ce, use_acm=cfg.use_acm)


def uses_kd(cfg: TrainConfig) -> bool:
    """Whether the configured method compares teacher and student logits (then class counts must agree)."""
    return cfg.method in {"kd", "ard"} or (cfg.method == "mixacm" and cfg.use_kd)


def check_method(cfg: TrainConfig) -> None:
    if cfg.method not in METHODS:
        raise ValueError(f"unknown method {cfg.method!r}; valid: {', '.join(METHODS)}")
    if cfg.method == "mixacm" and not (cfg.use_kd or cfg.use_acm or cfg.use_ce):
        raise ValueError("mixacm with use_kd, use_acm and use_ce all false has no loss; switch one on")


__all__ = ["METHODS", "NEEDS_TEACHER", "natural_step", "pgd_at_step", "fast_at_step", "kd_step", "ard_step",
           "mixacm_step", "distill_objective", "objective_weights", "term_weights", "uses_kd", "check_method"]
