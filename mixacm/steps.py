"""What a training step takes and returns, shared by the step functions of mixacm.methods and mixacm.baselines.

Every step function has the signature ``step(ctx, x, y) -> StepOutput`` (``StepFn``):

    StepContext    the config, the student (a ``WithFeatures``, possibly DDP-wrapped) and its raw module, the frozen
                   teacher, the generator, the learned pieces of the feature loss, the epoch, state carried across steps.
    StepOutput     the scalar loss, the unweighted terms for logging, the student's logits, an optional post-step hook.
    WithFeatures   the student's calling convention: ``student(x)`` -> logits, ``student(x, x_adv, ...)`` -> one logits
                   tensor per input, ``student(x, features=True)`` -> (logits, block features),
                   ``student(x, teacher_feats=...)`` -> (logits, feature term); all through ``forward`` (DDP).
    feature_term   the feature loss of the MixACM objective under a config (ACM, or direct L2), which
                   ``WithFeatures`` computes in its forward and ``mixacm.methods.distill_objective`` outside it.
    acm_reference_channels   ``cfg.alpha_acm_reference`` resolved to block widths.

Neither mixacm.methods nor mixacm.baselines is imported here, so both import this module at top level.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from . import losses as _losses
from .config import ConfigError, TrainConfig
from .models import feature_channels_of


class WithFeatures(nn.Module):
    """``student(x)`` -> logits and ``student(x, features=True)`` -> (logits, feats) through ``forward``, so that a
    DistributedDataParallel wrapper sees every forward pass (DDP only syncs gradients of calls to ``forward``).
    ``student(x, x_adv, ...)`` -> one logits tensor per input, each from its own forward of the model.

    With ``distill`` (the learned pieces of the feature loss: "affine" maps of Table 9, "adapters" of Table 8) and
    ``cfg``, ``student(x, teacher_feats=feats_t)`` -> (logits, feature term): the term is computed inside this
    forward, so one DDP wrapper around this module holds and synchronises the student AND the distillation modules.
    """

    def __init__(self, model: nn.Module, feature_point: str | None = None, *, distill: nn.ModuleDict | None = None,
                 cfg: TrainConfig | None = None):
        super().__init__()
        self.model = model
        self.feature_point = feature_point
        self.distill = distill if distill is not None else nn.ModuleDict()
        self.cfg = cfg

    def forward(self, x: Tensor, *more: Tensor, features: bool = False, teacher_feats: list[Tensor] | None = None):
        if more:  # student(x, x_adv) -> (logits(x), logits(x_adv)): separate forwards (own BatchNorm batch
            # statistics, in this order) in one call, so that DDP sees one forward per backward
            if features or teacher_feats is not None:
                raise ValueError("several inputs give logits only; call with one input for features")
            return tuple(self.model(t) for t in (x, *more))
        if teacher_feats is not None:
            if self.cfg is None:
                raise ValueError("WithFeatures(..., cfg=...) is needed to compute the feature term in forward")
            logits, feats = self.model.forward_intermediates(x, feature_point=self.feature_point)
            d = self.distill
            return logits, feature_term(self.cfg, teacher_feats, feats, affine=d["affine"] if "affine" in d else None,
                                        adapters=d["adapters"] if "adapters" in d else None)
        if features:
            return self.model.forward_intermediates(x, feature_point=self.feature_point)
        return self.model(x)


@dataclass
class StepContext:
    cfg: TrainConfig
    student: nn.Module                    # WithFeatures (possibly DDP-wrapped); train mode
    student_module: nn.Module             # the raw model, used by attacks (no DDP hooks, no param grads)
    teacher: nn.Module | None = None      # FrozenTeacher
    generator: torch.Generator | None = None
    affine: nn.ModuleList | None = None   # learned maps for the affine transforms of Table 9
    adapters: nn.ModuleList | None = None  # 1x1 convs for direct feature L2 when widths differ (Table 8)
    distributed: bool = False
    feature_term_in_forward: bool = False  # student is WithFeatures(distill=..., cfg=...): term from its forward
    epoch: int = 0                        # 0-based epoch, set by the trainer (AWP's warm-up)
    extras: dict = field(default_factory=dict)  # state a method carries across steps (Free-AT's perturbation)


@dataclass
class StepOutput:
    loss: Tensor                # scalar to backpropagate
    terms: dict[str, Tensor]    # unweighted terms, detached, for logging / divergence checks
    logits: Tensor              # student logits on the inputs it was trained on (train accuracy)
    post_step: Callable[[], None] | None = None  # run by the trainer right after the optimiser step (AWP, Free-AT)


StepFn = Callable[[StepContext, Tensor, Tensor], StepOutput]


def feature_term(c: TrainConfig, feats_t: list[Tensor], feats_s: list[Tensor], *, affine: nn.ModuleList | None = None,
                 adapters: nn.ModuleList | None = None) -> Tensor:
    blocks = c.blocks  # 1-based, as in Table 7 (mixacm.losses uses the same convention)
    if c.feature_loss == "direct":
        return _losses.direct_feature_loss(feats_t, feats_s, blocks=blocks, adapters=adapters)
    return _losses.acm_loss(feats_t, feats_s, blocks=blocks, transform=c.transform, reduction=c.acm_reduction,
                            mapping=c.mapping, affine=affine, reference_channels=acm_reference_channels(c))


def acm_reference_channels(cfg: TrainConfig, n_blocks: int | None = None) -> tuple[int, ...] | None:
    """``cfg.alpha_acm_reference`` resolved, the one place it is: the block widths (C_ref_1, ..., C_ref_m) of the
    named architecture that ``acm_loss(reference_channels=...)`` divides block i's summed distance by; None when
    unset (alpha_acm literally). ``n_blocks``: the student's block count, which the reference must have
    (``mixacm.train.check_names`` passes it before training). ConfigError names the fix. That the reference needs
    acm_reduction="mean" is a value check of the config (``mixacm.config.check``)."""
    if cfg.alpha_acm_reference is None:
        return None
    try:
        ref = feature_channels_of(cfg.alpha_acm_reference)  # cached: resolved once per name
    except ValueError as e:
        raise ConfigError(f"alpha_acm_reference: {e}") from None
    if n_blocks is not None and len(ref) != n_blocks:
        raise ConfigError(f"alpha_acm_reference: {cfg.alpha_acm_reference} has {len(ref)} feature blocks, the student "
                          f"{cfg.model} has {n_blocks}; name a reference of the student's family (e.g. wrn-34-10)")
    return ref


__all__ = ["StepContext", "StepOutput", "StepFn", "WithFeatures", "feature_term", "acm_reference_channels"]
