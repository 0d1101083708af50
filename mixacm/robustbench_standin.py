"""A stand-in for RobustBench's DOWNLOAD only: random weights in the exact file RobustBench would have downloaded.

NEVER A REAL TEACHER. ``write_standin_checkpoint`` writes seeded RANDOM weights (and random BatchNorm running
statistics); a model loaded from it predicts nonsense and must never be used to distil or be reported. It exists
so that the whole RobustBench path of ``mixacm.teachers`` (RobustBench's own model class and ``load_model``, its
file location and format, our key mapping, our architecture, the normalisation) can be tested without network.

How it fits RobustBench 1.1.1 (``robustbench/utils.py``, ``load_model``):
  * the file lives at ``model_dir / dataset / threat_model / f"{name}.pt"`` (e.g. ``DIR/cifar100/Linf/
    Gowal2020Uncovering_extra.pt``); ``load_model`` downloads only when that file is missing, so with the stand-in
    in place it loads with no network;
  * the file is a plain state dict saved with ``torch.save`` (tensors only: ``load_model`` reads it with
    ``torch.load``, whose default is ``weights_only=True``). It strips ``module.``/``model.`` prefixes (none here)
    and, for ImageNet models, adds ``model.`` because it wraps them as ``normalize_model(net, mean, std)`` =
    ``Sequential(normalize=ImageNormalizer, model=net)``; so the ImageNet file holds the bare network's keys
    (``conv1.weight`` ...), and the normaliser's mean/std come from RobustBench's constructor, as for real files.
  * mean/std are never in the file (DMWideResNet keeps them as non-persistent buffers; ImageNormalizer gets them
    from its constructor): the normalisation a teacher gets is decided by the model definition alone, which is
    why ``mixacm.teachers.ROBUSTBENCH_TEACHERS`` must state it (and is checked against RobustBench's models).

``mixacm.teachers.load_teacher_model("robustbench:NAME", cache_dir=DIR)`` passes ``model_dir=DIR`` to
``load_model``, so ``write_standin_checkpoint(NAME, DIR)`` is found by exactly that call.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from .teachers import ROBUSTBENCH_TEACHERS, TeacherError, _robustbench_utils


def _entry(name: str) -> tuple[dict, str, str]:
    """(RobustBench's model_zoo registry entry for name, dataset folder name, threat-model folder name)."""
    if name not in ROBUSTBENCH_TEACHERS:
        raise TeacherError(f"unknown RobustBench teacher {name!r}; valid: {', '.join(ROBUSTBENCH_TEACHERS)}")
    info = ROBUSTBENCH_TEACHERS[name]
    _robustbench_utils()  # imports robustbench (with the autoattack shim) or raises a one-line TeacherError
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    ds, tm = BenchmarkDataset(info.dataset), ThreatModel(info.threat_model)
    return model_dicts[ds][tm][name], ds.value, tm.value


def standin_path(name: str, model_dir: str | Path) -> Path:
    """Where RobustBench's ``load_model(name, model_dir=model_dir, ...)`` looks for (and downloads to) name."""
    _, ds, tm = _entry(name)
    return Path(model_dir) / ds / tm / f"{name}.pt"


@torch.no_grad()
def _randomise(model: nn.Module, gen: torch.Generator) -> None:
    """Seeded random weights everywhere, and random BatchNorm affine parameters and running statistics (a fresh
    BN is the identity in eval mode, which would hide a BN/activation swap)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.weight.uniform_(0.5, 1.5, generator=gen)
            m.bias.normal_(0.0, 0.2, generator=gen)
            m.running_mean.normal_(0.0, 0.5, generator=gen)
            m.running_var.uniform_(0.5, 2.0, generator=gen)
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            m.weight.normal_(0.0, (2.0 / fan_in) ** 0.5 * 0.5, generator=gen)  # He scale, halved: finite logits
            if m.bias is not None:
                m.bias.normal_(0.0, 0.1, generator=gen)


def write_standin_checkpoint(name: str, model_dir: str | Path, seed: int = 0) -> Path:
    """Write a RANDOM-weight stand-in for RobustBench teacher ``name`` where RobustBench's ``load_model`` expects
    its download (see module docstring); returns the file's path. Built with RobustBench's OWN model class (its
    model_zoo registry entry), seeded by ``seed``. Never a real teacher."""
    entry, ds, _ = _entry(name)
    path = standin_path(name, model_dir)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # the constructor's own init draws from the global RNG
        torch.manual_seed(seed)
        model = entry["model"]()
    _randomise(model, gen)
    state = model.state_dict()
    if ds == "imagenet":  # load_model re-adds 'model.'; the normaliser is built from the constructor's mean/std
        if not all(k.startswith(("model.", "normalize.")) for k in state):
            raise TeacherError(f"RobustBench's {name!r} is not a normalize_model wrapper; the stand-in cannot write it")
        state = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    bad = [k for k in state if "module." in k or "model." in k]  # load_model would mangle these keys
    if bad:
        raise TeacherError(f"stand-in for {name!r} has keys RobustBench would rewrite (e.g. {bad[0]})")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({k: v.contiguous() for k, v in state.items()}, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def standin_reference(name: str, model_dir: str | Path) -> nn.Module:
    """RobustBench's own model for name, loaded by RobustBench's ``load_model`` from model_dir (eval mode); with a
    stand-in written there this needs no network. The reference our loader is compared with."""
    info = ROBUSTBENCH_TEACHERS[name] if name in ROBUSTBENCH_TEACHERS else None
    if info is None:
        raise TeacherError(f"unknown RobustBench teacher {name!r}; valid: {', '.join(ROBUSTBENCH_TEACHERS)}")
    load_model = _robustbench_utils().load_model
    return load_model(model_name=name, model_dir=str(model_dir), dataset=info.dataset,
                      threat_model=info.threat_model).eval()


__all__ = ["write_standin_checkpoint", "standin_reference", "standin_path"]
