"""MixACM losses as pure functions over tensors (Awais et al., NeurIPS 2021).

    activated_channel_map   g_c of Sec. 5.1 (channel-wise max over H x W)
    acm_loss                L_acm = sum_i || a_i^T/||a_i^T|| - a_i^S/||a_i^S|| ||_2^2      (Sec. 5.1, Sec. 5.2)
    kd_loss                 L_kld = gamma^2 KL(y^T(gamma) || y^S(gamma))                  (Sec. 5.3)
    mixup_ce                L_mix = lam CE(f(x~), y_a) + (1 - lam) CE(f(x~), y_b)          (Sec. 5.4, Zhang et al.)
    direct_feature_loss     "Full"/"Direct" distillation of Table 8 (plain MSE between block features)
The objective of Sec. 5.4, (1 - a_kld) L_mix + a_kld L_kld + a_acm L_acm, is assembled by the trainer.
Teacher inputs (features, logits) are detached here: the teacher is a fixed target.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MAPPINGS = ("max", "mean")


def _fp32(fn):
    """Runs a loss with autocast disabled on its inputs' device (its body casts the inputs to float32), so under
    torch.autocast(..., dtype=torch.bfloat16) the loss and its reductions are computed in fp32."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        dev = next((t.device.type for a in args for t in (a if isinstance(a, (list, tuple)) else (a,))
                    if isinstance(t, Tensor)), "cpu")
        if dev in ("cpu", "cuda") and torch.is_autocast_enabled(dev):
            with torch.autocast(dev, enabled=False):
                return fn(*args, **kwargs)
        return fn(*args, **kwargs)
    return wrapper
TRANSFORMS = ("none", "teacher_maxpool", "teacher_avgpool", "student_maxpool", "student_avgpool",
              "teacher_affine", "student_affine")
REDUCTIONS = ("sum", "mean")


class _ChannelMax(torch.autograd.Function):
    """feat.amax(dim=(2, 3)) with amax's gradient (split evenly among tied maxima), computed without the bool->long
    and bool->float copies of PyTorch's AmaxBackward (about 2.5x cheaper on CPU; bitwise the same gradient)."""

    @staticmethod
    def forward(ctx, feat: Tensor) -> Tensor:
        out = feat.amax(dim=(2, 3))
        ctx.save_for_backward(feat, out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        feat, out = ctx.saved_tensors
        mask = torch.eq(feat, out[:, :, None, None], out=torch.empty_like(feat, dtype=grad.dtype))  # 1 at maxima
        count = mask.sum(dim=(2, 3))  # ties per (sample, channel), >= 1
        return mask.mul_((grad / count)[:, :, None, None])


def activated_channel_map(feat: Tensor, mapping: str = "max") -> Tensor:
    """g_c (Sec. 5.1): (B, C, H, W) -> (B, C), the max (default) or the mean of each channel over H x W."""
    if feat.dim() != 4:
        raise ValueError(f"activated_channel_map expects (B, C, H, W), got shape {tuple(feat.shape)}")
    if mapping == "max":
        if feat.requires_grad and torch.is_grad_enabled():
            return _ChannelMax.apply(feat)
        return feat.amax(dim=(2, 3))
    if mapping == "mean":
        return feat.flatten(2).mean(dim=2)
    raise ValueError(f"unknown mapping {mapping!r}; valid: {', '.join(MAPPINGS)}")


def _pool1d(a: Tensor, size: int, kind: str) -> Tensor:
    # Sec. 5.2: PyTorch 1-D adaptive pooling down- or up-samples the channel axis. (B, C) -> (B, size)
    if a.shape[1] == size:
        return a
    fn = F.adaptive_max_pool1d if kind == "max" else F.adaptive_avg_pool1d
    return fn(a.unsqueeze(1), size).squeeze(1)


def make_affine_maps(channels_t: Sequence[int], channels_s: Sequence[int], side: str) -> nn.ModuleList:
    """Learned fully connected maps of the 'Affine' rows of Table 9, one per block.

    side="teacher": Linear(C_t -> C_s) applied to the teacher's ACM; side="student": Linear(C_s -> C_t).
    Its parameters belong to the student's optimiser (the teacher stays frozen).
    """
    if len(channels_t) != len(channels_s):
        raise ValueError(f"teacher has {len(channels_t)} blocks, student {len(channels_s)}; they must match")
    if side == "teacher":
        return nn.ModuleList(nn.Linear(ct, cs) for ct, cs in zip(channels_t, channels_s))
    if side == "student":
        return nn.ModuleList(nn.Linear(cs, ct) for ct, cs in zip(channels_t, channels_s))
    raise ValueError(f"unknown side {side!r}; valid: teacher, student")


def _select(n: int, blocks: Sequence[int] | None) -> list[int]:
    # 1-based block indices as in Table 7 -> 0-based list positions
    if blocks is None:
        return list(range(n))
    bad = [b for b in blocks if not 1 <= int(b) <= n]
    if bad or len(blocks) == 0:
        raise ValueError(f"blocks must be a non-empty subset of 1..{n} (1-based, Table 7), got {list(blocks)}")
    return [int(b) - 1 for b in blocks]


@_fp32
def acm_loss(feats_t: Sequence[Tensor], feats_s: Sequence[Tensor], *, blocks: Sequence[int] | None = None,
             transform: str = "teacher_maxpool", reduction: str = "sum", mapping: str = "max",
             affine: nn.ModuleList | None = None, reference_channels: Sequence[int] | None = None) -> Tensor:
    """ACM transfer loss (Sec. 5.1, Eq. for L_acm_i; Sec. 5.2 for channel mismatch; Table 9 transforms).

    L_acm = mean_batch sum_{i in blocks} d(a_i^T/||a_i^T||_2, a_i^S/||a_i^S||_2),  a_i = g_c(A_i), where
    d = squared L2 distance summed over channels (reduction="sum", the paper's formula) or averaged over
    channels (reduction="mean"). Per block the distance lies in [0, 4] ("sum"); 0 iff the maps are
    positively proportional.
    The default "sum" is the paper's formula as written, for direct calls of this pure function. The trainer's
    default is "mean" (``TrainConfig.acm_reduction``): the paper does not say which, and its alpha_acm = 5000 fits
    only "mean" ("sum" makes the ACM term ~10^3 times the CE and the student stays at chance); the trainer always
    passes its config's value (``mixacm.steps.feature_term``).

    reference_channels (with reduction="mean"): block i's distance is summed over channels and divided by
    reference_channels[i] instead of its own width C_i, i.e. the "mean" of the reference architecture. A weight
    alpha_acm then keeps the per-channel weight alpha_acm / C_ref_i it has on the reference (e.g. the paper's
    WRN-34-10, widths 16, 160, 320, 640): on a student of widths C_i it acts as alpha_acm * C_i / C_ref_i.

    transform (applied to the un-normalised maps, before L2 normalisation):
      "none"                   channels must match;
      "teacher_maxpool/avgpool" 1-D adaptive pool of the teacher's map to C_s (default, Sec. 5.2 / Table 9);
      "student_maxpool/avgpool" pool the student's map to C_t;
      "teacher_affine"/"student_affine"  learned map from ``make_affine_maps`` (passed as ``affine``).
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown transform {transform!r}; valid: {', '.join(TRANSFORMS)}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")
    if len(feats_t) != len(feats_s):
        raise ValueError(f"teacher gives {len(feats_t)} block features, student {len(feats_s)}; they must match")
    if transform.endswith("affine") and affine is None:
        raise ValueError(f"transform={transform!r} needs affine=make_affine_maps(channels_t, channels_s, side)")
    if reference_channels is not None:
        if reduction != "mean":
            raise ValueError(f"reference_channels needs reduction='mean' (got {reduction!r}): with 'sum' the "
                             f"weight of a block does not depend on its width")
        if len(reference_channels) != len(feats_s):
            raise ValueError(f"reference_channels has {len(reference_channels)} blocks, the features "
                             f"{len(feats_s)} blocks; they must match")
    total = feats_s[0].new_zeros((), dtype=torch.float32)
    for i in _select(len(feats_s), blocks):
        # fp32 maps (max is exact in any dtype, so cast after it; mean averages in fp32)
        f_t, f_s = feats_t[i].detach(), feats_s[i]
        if mapping == "mean":
            f_t, f_s = f_t.float(), f_s.float()
        a_t = activated_channel_map(f_t, mapping).float()  # (B, C_t)
        a_s = activated_channel_map(f_s, mapping).float()  # (B, C_s)
        c_t, c_s = a_t.shape[1], a_s.shape[1]
        if transform == "none" and c_t != c_s:
            raise ValueError(f"block {i + 1}: teacher has {c_t} channels, student {c_s}; use transform="
                             f"'teacher_maxpool' (or another of {', '.join(TRANSFORMS[1:])})")
        if transform.startswith("teacher_") and transform.endswith("pool"):
            a_t = _pool1d(a_t, c_s, transform[len("teacher_"):-len("pool")])
        elif transform.startswith("student_") and transform.endswith("pool"):
            a_s = _pool1d(a_s, c_t, transform[len("student_"):-len("pool")])
        elif transform == "teacher_affine":
            a_t = affine[i](a_t.to(affine[i].weight.dtype))
        elif transform == "student_affine":
            a_s = affine[i](a_s.to(affine[i].weight.dtype))
        if a_t.shape != a_s.shape:
            raise ValueError(f"block {i + 1}: maps of shape {tuple(a_t.shape)} vs {tuple(a_s.shape)} after "
                             f"transform {transform!r}; check the affine maps' sizes")
        u = F.normalize(a_t.float(), dim=1)  # (B, C) unit rows; an all-zero map stays zero
        v = F.normalize(a_s.float(), dim=1)
        d = (u - v).pow(2)  # (B, C)
        if reference_channels is not None:
            per_sample = d.sum(1) / float(reference_channels[i])  # (B,) the reference width's mean
        else:
            per_sample = d.sum(1) if reduction == "sum" else d.mean(1)  # (B,)
        total = total + per_sample.mean()
    return total


@_fp32
def kd_loss(logits_s: Tensor, logits_t: Tensor, temperature: float = 10.0) -> Tensor:
    """Sec. 5.3: gamma^2 KL(softmax(z^T/gamma) || softmax(z^S/gamma)), summed over classes, mean over the batch."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if logits_s.shape != logits_t.shape:
        raise ValueError(f"student logits {tuple(logits_s.shape)} vs teacher logits {tuple(logits_t.shape)}: "
                         "KD needs the same classes (turn KD off for cross-dataset transfer, Table 5)")
    log_p_s = F.log_softmax(logits_s.float() / temperature, dim=1)
    log_p_t = F.log_softmax(logits_t.detach().float() / temperature, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * temperature**2


@_fp32
def mixup_ce(logits: Tensor, y_a: Tensor, y_b: Tensor, lam: float) -> Tensor:
    """Mixup cross-entropy (Zhang et al. 2018; L_mix of Sec. 5.4): lam CE(z, y_a) + (1 - lam) CE(z, y_b)."""
    logits = logits.float()
    return lam * F.cross_entropy(logits, y_a) + (1.0 - lam) * F.cross_entropy(logits, y_b)


def _param_dtype(m: nn.Module, default: torch.dtype) -> torch.dtype:
    p = next(m.parameters(), None)
    return default if p is None else p.dtype


def make_feature_adapters(channels_t: Sequence[int], channels_s: Sequence[int]) -> nn.ModuleList:
    """1x1 convs (FitNets-style regressors) mapping student block features to the teacher's channel count,
    for ``direct_feature_loss`` when widths differ (Table 8 rows with different teacher/student widths).
    Blocks whose channels already match get an identity."""
    if len(channels_t) != len(channels_s):
        raise ValueError(f"teacher has {len(channels_t)} blocks, student {len(channels_s)}; they must match")
    return nn.ModuleList(nn.Identity() if ct == cs else nn.Conv2d(cs, ct, 1, bias=False)
                         for ct, cs in zip(channels_t, channels_s))


@_fp32
def direct_feature_loss(feats_t: Sequence[Tensor], feats_s: Sequence[Tensor], *, blocks: Sequence[int] | None = None,
                        adapters: nn.ModuleList | None = None) -> Tensor:
    """"Full"/"Direct" distillation of Table 8 (Supp. A.4.3): sum over selected blocks of the mean squared
    error between teacher and student block features (mean over all B*C*H*W elements).

    Shapes must match; when widths differ pass ``adapters=make_feature_adapters(channels_t, channels_s)``
    (applied to the student's features). The paper does not say how it handled different widths.
    """
    if len(feats_t) != len(feats_s):
        raise ValueError(f"teacher gives {len(feats_t)} block features, student {len(feats_s)}; they must match")
    total = feats_s[0].new_zeros((), dtype=torch.float32)
    for i in _select(len(feats_s), blocks):
        f_s = feats_s[i].float()
        f_s = f_s if adapters is None else adapters[i](f_s.to(_param_dtype(adapters[i], f_s.dtype)))
        f_t = feats_t[i].detach()
        if f_s.shape != f_t.shape:
            raise ValueError(f"block {i + 1}: student feature {tuple(f_s.shape)} vs teacher {tuple(f_t.shape)}; "
                             "pass adapters=make_feature_adapters(channels_t, channels_s) or use acm_loss")
        total = total + F.mse_loss(f_s.float(), f_t.float())
    return total
