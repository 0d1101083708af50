"""PreAct ResNet-18 (He et al. 2016, "Identity mappings"), CIFAR layout with a final BN+act before the head
(the variant used in robust-training work, e.g. Rice et al. 2020).

Stem conv 3x3 -> 64; four groups of two pre-activation basic blocks (64, 128, 256, 512 channels,
strides 1, 2, 2, 2; 1x1-conv shortcut on the activated input when shape changes); BN-act, GAP, linear.

Features: block 1 = stem conv output, blocks 2-5 = the four group outputs (five features; the WRNs have
four). ``feature_point`` as in ``mixacm.models.wrn`` ("pre" raw residual sums, "post" after the BN+act
that the next layer applies).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .common import FeatureModel, check_feature_point, make_activation, make_feature_info, register_normalization
from .wrn import PreActBlock


class PreActResNet18(FeatureModel):
    def __init__(self, num_classes: int = 10, *, activation: str = "relu", in_channels: int = 3,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 feature_point: str = "pre"):
        super().__init__()
        act = make_activation(activation)
        register_normalization(self, in_channels, mean, std)
        self.feature_point = check_feature_point(feature_point)
        ch = (64, 64, 128, 256, 512)
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.groups = nn.ModuleList(
            nn.Sequential(PreActBlock(ch[g], ch[g + 1], s, act), PreActBlock(ch[g + 1], ch[g + 1], 1, act))
            for g, s in enumerate((1, 2, 2, 2)))
        self.bn = nn.BatchNorm2d(512)
        self.act = act()
        self.fc = nn.Linear(512, num_classes)
        # a group's output is its second block's (the forward pass calls the blocks, not the group)
        self.feature_info = make_feature_info(ch, (1, 1, 2, 4, 8), ("conv1", *(f"groups.{g}.1" for g in range(4))))

    def forward_intermediates(self, x: Tensor, feature_point: str | None = None) -> tuple[Tensor, list[Tensor]]:
        post = check_feature_point(feature_point or self.feature_point) == "post"
        out = self.conv1(self.normalize(x))
        feats: list[Tensor] = []
        for group in self.groups:
            a = group[0].preact(out)
            feats.append(a if post else out)
            out = group[1](group[0](out, a))
        a = self.act(self.bn(out))
        feats.append(a if post else out)
        return self.fc(F.adaptive_avg_pool2d(a, 1).flatten(1)), feats
