"""WRN in the layout of RobustBench's ``DMWideResNet`` (Gowal et al. 2020, "Uncovering the limits of
adversarial training"), so the paper's teachers (WRN-28-10 and WRN-34-20, Swish) load with
``load_state_dict(strict=True)``.

Differences from ``wrn.WideResNet`` (same parameter count, different maths and key names):
  * module names: ``init_conv``, ``layer.<g>.block.<b>.{batchnorm_0, conv_0, batchnorm_1, conv_1, shortcut}``,
    ``batchnorm``, ``logits``; buffers ``mean``/``std`` of shape (C, 1, 1), NOT in the state_dict (as in
    RobustBench >= 1.1, ``persistent=False``); older checkpoints that carry ``mean``/``std`` still load and
    their values are used;
  * TensorFlow "SAME" padding of the first conv of a block: explicit pad (1,1,1,1) at stride 1 and
    (0,1,0,1) at stride 2, then an unpadded conv (the checkpoints were trained in JAX/TF);
  * the shortcut exists iff the width changes (1x1 conv on the activated input).
Default activation: Swish (SiLU), as in the Gowal et al. checkpoints.

Feature contract and ``feature_point`` exactly as in ``mixacm.models.wrn`` (block 1 = init_conv output,
blocks 2-4 = group outputs; "pre" = raw residual sums, "post" = after the BN+act the next layer applies).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .common import FeatureModel, check_feature_point, make_activation, make_feature_info, register_normalization


class DMBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, act: type[nn.Module]):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        self.batchnorm_0 = nn.BatchNorm2d(c_in)
        self.relu_0 = act()
        self.conv_0 = nn.Conv2d(c_in, c_out, 3, stride, 0, bias=False)
        self.batchnorm_1 = nn.BatchNorm2d(c_out)
        self.relu_1 = act()
        self.conv_1 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.has_shortcut = c_in != c_out
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False) if self.has_shortcut else None
        self.stride = stride

    def preact(self, x: Tensor) -> Tensor:
        return self.relu_0(self.batchnorm_0(x))

    def forward(self, x: Tensor, a: Tensor | None = None) -> Tensor:
        a = self.preact(x) if a is None else a
        pad = (1, 1, 1, 1) if self.stride == 1 else (0, 1, 0, 1)  # TF "SAME"
        out = self.conv_0(F.pad(a, pad))
        out = self.conv_1(self.relu_1(self.batchnorm_1(out)))
        return out + (self.shortcut(a) if self.has_shortcut else x)


class DMBlockGroup(nn.Module):
    def __init__(self, n: int, c_in: int, c_out: int, stride: int, act: type[nn.Module]):
        super().__init__()
        self.block = nn.Sequential(*[DMBlock(c_in if i == 0 else c_out, c_out, stride if i == 0 else 1, act)
                                     for i in range(n)])

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class GowalWideResNet(FeatureModel):
    def __init__(self, depth: int = 28, width: int = 10, num_classes: int = 10, *, activation: str = "swish",
                 in_channels: int = 3, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 feature_point: str = "pre"):
        super().__init__()
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(f"WRN depth must be 6n+4 with n >= 1 (10, 16, 22, 28, 34, 70, ...), got {depth}")
        n = (depth - 4) // 6
        act = make_activation(activation)
        register_normalization(self, in_channels, mean, std, persistent=False)
        self.depth, self.width, self.activation = depth, width, activation
        self.feature_point = check_feature_point(feature_point)
        ch = [16, 16 * width, 32 * width, 64 * width]
        self.init_conv = nn.Conv2d(in_channels, ch[0], 3, 1, 1, bias=False)
        self.layer = nn.Sequential(*[DMBlockGroup(n, ch[g], ch[g + 1], s, act) for g, s in enumerate((1, 2, 2))])
        self.batchnorm = nn.BatchNorm2d(ch[3])
        self.relu = act()
        self.logits = nn.Linear(ch[3], num_classes)
        # a group's output is its last block's (the forward pass calls the blocks, not the group)
        self.feature_info = make_feature_info(ch, (1, 1, 2, 4),
                                              ("init_conv", *(f"layer.{g}.block.{n - 1}" for g in range(3))))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # older RobustBench checkpoints store the normalisation; take it instead of reporting unexpected keys
        for name in ("mean", "std"):
            v = state_dict.pop(prefix + name, None)
            if v is not None:
                getattr(self, name).copy_(v.view_as(getattr(self, name)))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def forward_intermediates(self, x: Tensor, feature_point: str | None = None) -> tuple[Tensor, list[Tensor]]:
        post = check_feature_point(feature_point or self.feature_point) == "post"
        out = self.init_conv(self.normalize(x))
        feats: list[Tensor] = []
        for group in self.layer:
            first = group.block[0]
            a = first.preact(out)
            feats.append(a if post else out)
            out = first(out, a)
            for blk in group.block[1:]:
                out = blk(out)
        a = self.relu(self.batchnorm(out))
        feats.append(a if post else out)
        # global average pool = RobustBench's avg_pool2d(out, 8) on 32x32 input
        logits = self.logits(F.adaptive_avg_pool2d(a, 1).flatten(1))
        return logits, feats
