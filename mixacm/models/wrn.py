"""Wide ResNet WRN-depth-width (Zagoruyko & Komodakis 2016), pre-activation design, for 32x32 (and 8x8) input.

Layout: stem conv 3x3 -> 16 channels; three groups of n = (depth-4)/6 pre-activation basic blocks
(BN-act-conv3x3-BN-act-conv3x3, 1x1 conv shortcut when the width changes) with 16k, 32k, 64k
channels and strides 1, 2, 2; final BN-act, global average pool, linear. ReLU or Swish (SiLU).
WRN-28-10 for 10 classes has 36,479,194 parameters, WRN-34-10 46,160,474 (tested).

Feature contract (MixACM Sec. 5.1, Table 7): block 1 = output of the stem conv, blocks 2-4 = outputs of
the three groups (low / mid / high level).

Where a feature is taken (``feature_point``):
  * "pre" (default): the raw tensor the block hands on. In a pre-activation network that is the stem
    conv output / the un-normalised residual sum of the group; no BN or activation has touched it.
    This is the literal reading of "output of the i-th block" and what one gets by hooking the group
    modules of RobustBench's DMWideResNet, which the paper's teachers use.
  * "post": the same tensor after the BN+activation that the NEXT layer applies to it, i.e. the
    "activated" channels: for blocks 1-3 it is the first block's BN+act of the next group (computed in
    the forward pass anyway, so it is free), for block 4 it is the model's own final BN+act.
    This matches what a post-activation ResNet (ResNet-50) hands on.
  The two differ for ACM (channel max of a residual sum can be negative; after ReLU it is >= 0).
  The default is "pre" because it is the paper's wording read literally and what RobustBench's teachers give;
  "post" is a config switch (``TrainConfig.feature_point``), compared in docs/implementation-choices.md.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .common import FeatureModel, check_feature_point, make_activation, make_feature_info, register_normalization


class PreActBlock(nn.Module):
    """BN-act-conv-BN-act-conv with identity or 1x1-conv shortcut (the latter on the activated input)."""

    def __init__(self, c_in: int, c_out: int, stride: int, act: type[nn.Module], drop_rate: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.act1 = act()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act2 = act()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.drop_rate = drop_rate
        self.shortcut = None if (c_in == c_out and stride == 1) else nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False)

    def preact(self, x: Tensor) -> Tensor:
        return self.act1(self.bn1(x))

    def forward(self, x: Tensor, a: Tensor | None = None) -> Tensor:
        a = self.preact(x) if a is None else a  # a: activated input, reusable as the previous block's "post" feature
        out = self.conv1(a)
        out = self.act2(self.bn2(out))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        return out + (x if self.shortcut is None else self.shortcut(a))


class WideResNet(FeatureModel):
    def __init__(self, depth: int = 28, width: int = 10, num_classes: int = 10, *, activation: str = "relu",
                 in_channels: int = 3, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 feature_point: str = "pre", drop_rate: float = 0.0):
        super().__init__()
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(f"WRN depth must be 6n+4 with n >= 1 (10, 16, 22, 28, 34, 40, ...), got {depth}")
        if width < 1:
            raise ValueError(f"WRN width must be >= 1, got {width}")
        n = (depth - 4) // 6
        act = make_activation(activation)
        register_normalization(self, in_channels, mean, std)
        self.depth, self.width, self.activation = depth, width, activation
        self.feature_point = check_feature_point(feature_point)
        ch = [16, 16 * width, 32 * width, 64 * width]
        self.conv1 = nn.Conv2d(in_channels, ch[0], 3, 1, 1, bias=False)
        self.groups = nn.ModuleList()
        for g, stride in enumerate((1, 2, 2)):
            blocks = [PreActBlock(ch[g] if i == 0 else ch[g + 1], ch[g + 1], stride if i == 0 else 1, act, drop_rate)
                      for i in range(n)]
            self.groups.append(nn.Sequential(*blocks))
        self.bn = nn.BatchNorm2d(ch[3])
        self.act = act()
        self.fc = nn.Linear(ch[3], num_classes)
        # a group's output is its last block's (the forward pass calls the blocks, not the group)
        self.feature_info = make_feature_info(ch, (1, 1, 2, 4), ("conv1", *(f"groups.{g}.{n - 1}" for g in range(3))))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_intermediates(self, x: Tensor, feature_point: str | None = None) -> tuple[Tensor, list[Tensor]]:
        post = check_feature_point(feature_point or self.feature_point) == "post"
        out = self.conv1(self.normalize(x))  # (B, 16, H, W)
        feats: list[Tensor] = []
        for group in self.groups:
            first = group[0]
            a = first.preact(out)  # BN+act the next layer applies = "post" view of the previous block
            feats.append(a if post else out)
            out = first(out, a)
            for blk in group[1:]:
                out = blk(out)
        a = self.act(self.bn(out))  # (B, 64k, H/4, W/4)
        feats.append(a if post else out)
        logits = self.fc(F.adaptive_avg_pool2d(a, 1).flatten(1))  # (B, 64k) -> (B, K)
        return logits, feats
