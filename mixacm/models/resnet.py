"""ResNet-50 (torchvision) wrapped to the feature contract, ImageNet normalisation inside.

The torchvision model sits in ``self.net`` (state_dict keys ``net.conv1.weight`` ...; to load a plain
torchvision / Salman et al. checkpoint use ``model.net.load_state_dict(sd)``).

Features: block 1 = output of the first layer (stem), blocks 2-5 = outputs of layer1..layer4
(256, 512, 1024, 2048 channels). ResNet-50 is a POST-activation network: each stage already ends with
ReLU, so stage outputs are the same for "pre" and "post". Only block 1 differs: "pre" = raw conv1
output, "post" = after bn1+ReLU. (Max-pooling after the stem does not change a channel-wise max.)
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .common import (IMAGENET_MEAN, IMAGENET_STD, FeatureModel, check_feature_point, make_feature_info,
                     register_normalization)


class ResNet50(FeatureModel):
    def __init__(self, num_classes: int = 1000, *, in_channels: int = 3, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, feature_point: str = "pre"):
        super().__init__()
        if in_channels == 3:
            mean = IMAGENET_MEAN if mean is None else mean
            std = IMAGENET_STD if std is None else std
        register_normalization(self, in_channels, mean, std)
        self.feature_point = check_feature_point(feature_point)
        from torchvision.models import resnet50  # lazy: torchvision import is slow

        self.net = resnet50(weights=None, num_classes=num_classes)
        if in_channels != 3:
            self.net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        # stem conv stride 2 (then max-pool, another 2), layer2..4 stride 2 each
        self.feature_info = make_feature_info((64, 256, 512, 1024, 2048), (2, 4, 8, 16, 32),
                                              ("net.conv1", "net.layer1", "net.layer2", "net.layer3", "net.layer4"))

    def forward_intermediates(self, x: Tensor, feature_point: str | None = None) -> tuple[Tensor, list[Tensor]]:
        post = check_feature_point(feature_point or self.feature_point) == "post"
        n = self.net
        z = n.conv1(self.normalize(x))
        a = n.relu(n.bn1(z))
        feats = [a if post else z]
        out = n.maxpool(a)
        for layer in (n.layer1, n.layer2, n.layer3, n.layer4):
            out = layer(out)
            feats.append(out)
        logits = n.fc(torch.flatten(n.avgpool(out), 1))
        return logits, feats
