"""Model zoo with one feature contract (MixACM Sec. 5.1 and Table 7).

    model(x) -> logits (B, K); inputs are images in [0,1], normalisation (mean/std buffers) is inside.
    model.forward_intermediates(x, feature_point=None) -> (logits, [f1, ..., fm])   # one forward pass
    model.feature_info -> [{"num_chs": C_i, "reduction": r_i, "module": name_i}, ...]  # tested against real outputs

The names are timm's (``forward_intermediates``, ``feature_info`` as a list of dicts), with one difference: the
first element that ``forward_intermediates`` returns is the logits, not the final unpooled feature map as in timm.
f_i has C_i channels and spatial size input / r_i; ``module`` names the submodule whose output is f_i at the "pre"
feature point, so a forward hook on it sees f_i (at "post", f_i is that output after the BN+act the network applies
to it next; ResNet-50's stage outputs are already activated and are the same at both points).

Block 1 = output of the first layer (stem conv); blocks 2.. = outputs of the residual groups
(WRNs and SmallCNN: m = 4, low/mid/high = 2/3/4; PreAct ResNet-18 and ResNet-50: m = 5).

``feature_point`` ("pre" default | "post"): whether a block feature is taken before or after the BN+act
the next layer applies. In pre-activation networks (WRN, PreAct ResNet) the group outputs are
un-normalised residual sums; "post" applies the next block's BN+act (for the last block the model's
own final BN+act), which costs nothing extra because the forward pass computes it anyway.
Default "pre": the literal "output of the i-th block", and what hooking the group modules of the
RobustBench WRNs used as the paper's teachers gives, so a teacher and a student of this zoo compare the
same tensors. See ``mixacm.models.wrn`` for details.

Names for ``build_model``:
    "wrn-D-W" / "wrn-D-W-swish"       Zagoruyko & Komodakis WRN, depth D = 6n+4, width W (ReLU / Swish)
    "gowal-wrn-D-W" / "...-relu"      RobustBench DMWideResNet layout (Gowal et al. 2020), Swish by default
    "preact-resnet18"                 PreAct ResNet-18 (CIFAR)
    "resnet50"                        torchvision ResNet-50 (ImageNet)
    "smallcnn"                        tiny CNN for tests / digits
kw: in_channels, mean, std, feature_point, activation (where meaningful), width (smallcnn).
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable

from torch import nn

from .common import FEATURE_POINTS, FeatureModel
from .gowal import GowalWideResNet
from .preact_resnet import PreActResNet18
from .resnet import ResNet50
from .smallcnn import SmallCNN
from .wrn import WideResNet

# name pattern -> constructor (patterns with D/W take depth and width parsed from the name)
MODELS: dict[str, Callable[..., nn.Module]] = {
    "wrn-D-W": WideResNet,
    "gowal-wrn-D-W": GowalWideResNet,
    "preact-resnet18": PreActResNet18,
    "resnet50": ResNet50,
    "smallcnn": SmallCNN,
}

_WRN = re.compile(r"^(gowal-)?wrn-(\d+)-(\d+)(?:-(relu|swish))?$")


def wrn_depth_width(name: str) -> tuple[int, int] | None:
    """(depth, widening factor) of a WRN name ("wrn-16-1", "WRN-28-10", "gowal-wrn-28-10-swish"); None otherwise."""
    m = _WRN.match(name.strip().lower())
    return (int(m.group(2)), int(m.group(3))) if m else None


def _valid() -> str:
    return "wrn-D-W[-swish], gowal-wrn-D-W[-relu], preact-resnet18, resnet50, smallcnn (e.g. wrn-34-10, wrn-16-1)"


def build_model(name: str, num_classes: int = 10, **kw) -> nn.Module:
    """Builds a model by name (see module docstring); unknown names raise with the list of valid ones."""
    key = name.strip().lower()
    m = _WRN.match(key)
    if m:
        gowal, depth, width, act = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
        if act is not None:
            if "activation" in kw and kw["activation"] != act:
                raise ValueError(f"model {name!r} says activation={act} but kw activation={kw['activation']!r}")
            kw["activation"] = act
        ctor = MODELS["gowal-wrn-D-W" if gowal else "wrn-D-W"]
        return ctor(depth, width, num_classes, **kw)
    if key in MODELS and "D-W" not in key:
        return MODELS[key](num_classes, **kw)
    raise ValueError(f"unknown model {name!r}; valid: {_valid()}")


@functools.lru_cache(maxsize=None)
def feature_channels_of(name: str) -> tuple[int, ...]:
    """Block widths (C_1, ..., C_m) of a named architecture (the ``num_chs`` of its ``feature_info``), built on the
    meta device (no weights allocated)."""
    import torch
    with torch.device("meta"):
        return tuple(f["num_chs"] for f in build_model(name, num_classes=10).feature_info)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; works on 'meta'-device models (size ratios of Tables 4/10)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["MODELS", "build_model", "count_parameters", "feature_channels_of", "wrn_depth_width", "FeatureModel", "FEATURE_POINTS", "WideResNet",
           "GowalWideResNet", "PreActResNet18", "ResNet50", "SmallCNN"]
