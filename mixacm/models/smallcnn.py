"""SmallCNN: a tiny pre-activation residual-free CNN for tests and the digits default (8x8 or 32x32 input).

Blocks (same contract as the WRNs): block 1 = stem conv output; blocks 2-4 = outputs of three conv stages
(3x3 conv, strides 1, 2, 2). Each stage starts with BN+act on its input, so, like the pre-activation
WRN, "pre" features are raw conv outputs and "post" features are the BN+act the next layer applies
(for block 4 the model's final BN+act).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .common import FeatureModel, check_feature_point, make_activation, make_feature_info, register_normalization


class SmallCNN(FeatureModel):
    def __init__(self, num_classes: int = 10, *, width: int = 8, activation: str = "relu", in_channels: int = 3,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 feature_point: str = "pre"):
        super().__init__()
        act = make_activation(activation)
        register_normalization(self, in_channels, mean, std)
        self.feature_point = check_feature_point(feature_point)
        ch = (width, width, 2 * width, 4 * width)
        self.stem = nn.Conv2d(in_channels, ch[0], 3, 1, 1, bias=False)
        self.bns = nn.ModuleList(nn.BatchNorm2d(c) for c in ch)  # bns[i]: BN applied to block i+1's output
        self.acts = nn.ModuleList(act() for _ in ch)
        self.convs = nn.ModuleList(nn.Conv2d(ch[i], ch[i + 1], 3, s, 1, bias=False) for i, s in enumerate((1, 2, 2)))
        self.fc = nn.Linear(ch[3], num_classes)
        self.feature_info = make_feature_info(ch, (1, 1, 2, 4), ("stem", "convs.0", "convs.1", "convs.2"))

    def forward_intermediates(self, x: Tensor, feature_point: str | None = None) -> tuple[Tensor, list[Tensor]]:
        post = check_feature_point(feature_point or self.feature_point) == "post"
        out = self.stem(self.normalize(x))
        feats: list[Tensor] = []
        for i in range(4):
            a = self.acts[i](self.bns[i](out))
            feats.append(a if post else out)
            if i < 3:
                out = self.convs[i](a)
        logits = self.fc(F.adaptive_avg_pool2d(a, 1).flatten(1))  # (B, 4w) -> (B, K)
        return logits, feats
