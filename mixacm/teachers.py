"""Robust teachers: load (RobustBench by name, local checkpoint, a run of this package), freeze, and gate on accuracy.

Teacher specs (``TrainConfig.teacher``):
    "robustbench:NAME"     a RobustBench model from ROBUSTBENCH_TEACHERS (optional extra ``mixacm[robustbench]``,
                           needs network the first time); weights are loaded into our own architecture (strict keys,
                           the normalisation the table states) so that block features follow the one feature
                           contract of mixacm.models. RobustBench's own ``load_model`` is called with
                           ``model_dir=cache_dir`` (default ~/.cache/mixacm/robustbench; the trainer passes
                           RUNS/_teachers), so the file is ``cache_dir/DATASET/Linf/NAME.pt``: downloaded there once,
                           read from there offline (also where mixacm.robustbench_standin writes its test stand-in).
    PATH.pt / PATH.pth     a checkpoint of this package (architecture rebuilt from it) or a raw state dict
                           (needs ``teacher_model``); always loaded with ``weights_only=True`` (no code runs).
    PATH.safetensors       a raw state dict in safetensors format (needs ``teacher_model``).
    RUN_DIR                a run directory of ``mixacm train``: its selected checkpoint.
    "config:PATH.toml"     a teacher trained by this package from that config: ``mixacm train`` trains it once into
                           ``cache_dir/STEM-DIGEST`` (config_teacher says where), and it is loaded from there.

The accuracy gate measures the teacher's clean accuracy on held-out examples and refuses a teacher far below
its expected value (RobustBench once served a model at chance accuracy).
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from .checkpoint import CheckpointError, is_package_checkpoint, load_checkpoint, load_state_strict
from .models.common import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD, IMAGENET_MEAN, IMAGENET_STD

if TYPE_CHECKING:
    from .config import TrainConfig


class TeacherError(ValueError):
    """A teacher that cannot be used; the message is one line that names the fix."""


@dataclass(frozen=True, kw_only=True)
class RobustBenchTeacher:
    """Everything needed to load one RobustBench model into our architecture: the ONE place that knows it.

    RobustBench keeps the input normalisation OUTSIDE its checkpoint files (DMWideResNet: constructor args stored as
    non-persistent buffers; ImageNet models: ``normalize_model(net, mean, std)``), so it must be stated here; the
    values are those of RobustBench's model definitions (``robustbench/model_zoo/{cifar10,cifar100,imagenet}.py``),
    and loading checks them against the RobustBench model it gets (tests/mixacm/test_robustbench_teachers.py too).
    """
    arch: str                          # our architecture name (mixacm.models.build_model)
    dataset: str                       # RobustBench dataset name: cifar10 | cifar100 | imagenet
    num_classes: int
    mean: tuple[float, float, float]   # input normalisation of RobustBench's model (images in [0,1])
    std: tuple[float, float, float]
    layout: str                        # how RobustBench's module tree maps to ours, see _RB_LAYOUTS
    clean_acc: float                   # RobustBench leaderboard clean accuracy (test set), used only by the gate
    threat_model: str = "Linf"
    note: str = ""


# RobustBench module tree -> ours (state-dict keys):
#   "dm":              DMWideResNet(..., mean, std) -> gowal-wrn-D-W: same keys; mean/std are not in the state dict.
#   "normalize_model": Sequential(normalize=ImageNormalizer(mean, std), model=torchvision net) -> resnet50:
#                      model.* -> net.*, normalize.{mean,std} (1,C,1,1) -> {mean,std} (C,1,1).
_RB_LAYOUTS = ("dm", "normalize_model")

# Teachers the paper used (Sec. 6 "Pre-Trained Robust Models"; Supp. A.1 "Teacher Models"), Linf threat model.
ROBUSTBENCH_TEACHERS: dict[str, RobustBenchTeacher] = {
    "Gowal2020Uncovering_28_10_extra": RobustBenchTeacher(
        arch="gowal-wrn-28-10", dataset="cifar10", num_classes=10, mean=CIFAR10_MEAN, std=CIFAR10_STD, layout="dm",
        clean_acc=0.8948, note="WRN-28-10, most CIFAR experiments"),
    "Gowal2020Uncovering_34_20": RobustBenchTeacher(
        arch="gowal-wrn-34-20", dataset="cifar10", num_classes=10, mean=CIFAR10_MEAN, std=CIFAR10_STD, layout="dm",
        clean_acc=0.8564, note="WRN-34-20, Tables 4/8"),
    "Gowal2020Uncovering_70_16_extra": RobustBenchTeacher(
        arch="gowal-wrn-70-16", dataset="cifar10", num_classes=10, mean=CIFAR10_MEAN, std=CIFAR10_STD, layout="dm",
        clean_acc=0.9110, note="not in the paper; a stronger CIFAR-10 teacher"),
    "Gowal2020Uncovering_extra": RobustBenchTeacher(
        arch="gowal-wrn-70-16", dataset="cifar100", num_classes=100, mean=CIFAR100_MEAN, std=CIFAR100_STD,
        layout="dm", clean_acc=0.6915, note="CIFAR-100; RobustBench has no Gowal WRN-28-10 for CIFAR-100"),
    "Salman2020Do_R50": RobustBenchTeacher(
        arch="resnet50", dataset="imagenet", num_classes=1000, mean=IMAGENET_MEAN, std=IMAGENET_STD,
        layout="normalize_model", clean_acc=0.6402, note="ResNet-50, Table 2"),
}


class FrozenTeacher(nn.Module):
    """A teacher that cannot change: eval mode always (``train()`` is a no-op), parameters without gradients,
    forward passes under ``torch.no_grad()`` (so BatchNorm running statistics never update)."""

    def __init__(self, model: nn.Module, *, feature_point: str | None = None, name: str = "teacher",
                 num_classes: int | None = None):
        super().__init__()
        self.model = freeze(model)
        self.feature_point = feature_point
        self.name = name
        self.num_classes = num_classes
        # the model's blocks (mixacm.models' contract), module names as seen from here: the model is ``self.model``
        self.feature_info = [{**f, "module": f"model.{f['module']}"} if "module" in f else dict(f)
                             for f in getattr(model, "feature_info", [])]
        super().train(False)

    def train(self, mode: bool = True) -> FrozenTeacher:  # noqa: ARG002 - frozen by construction
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    @torch.no_grad()
    def forward_intermediates(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """(logits, block features) at the teacher's feature point (``mixacm.models``' contract)."""
        return self.model.forward_intermediates(x, feature_point=self.feature_point)


def freeze(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# --------------------------------------------------------------------------------------------------- loading
def _build(arch: str, num_classes: int, in_channels: int, **kw) -> nn.Module:
    from .models import build_model
    try:
        return build_model(arch, num_classes=num_classes, in_channels=in_channels, **kw)
    except ValueError as e:
        raise TeacherError(f"teacher_model: {e}") from None


def _state_dict_of(payload: object, source: str) -> dict[str, Tensor]:
    if isinstance(payload, dict):
        for key in ("model_state", "state_dict", "model"):
            if isinstance(payload.get(key), dict):
                payload = payload[key]
                break
    if not isinstance(payload, dict) or not all(isinstance(v, Tensor) for v in payload.values()):
        raise TeacherError(f"teacher checkpoint {source} holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in payload.items()}  # DataParallel/DDP prefixes


def load_package_model(payload: dict, source: str = "checkpoint", model: nn.Module | None = None) -> nn.Module:
    """Rebuild the architecture stored in a checkpoint of this package and load its weights (eval mode)."""
    from .models import build_model
    from .normalization import model_stats
    name = payload["model"]
    if model is None:
        # the statistics the trainer built the model with (its data set's): they are in the state dict of most
        # models, but not of those that keep them out of it (gowal-wrn-*, RobustBench's layout)
        in_channels = int(payload["in_channels"])
        dataset = (payload.get("config") or {}).get("dataset")
        model = build_model(name, num_classes=int(payload["num_classes"]), in_channels=in_channels,
                            feature_point=payload.get("feature_point", "pre"), **model_stats(dataset, in_channels))
    load_state_strict(model, payload["model_state"], source=source, expected=name)
    return model.eval()


def _resolve_run_dir(path: Path) -> Path:
    summary = path / "summary.json"
    if summary.is_file():
        ckpt = Path(json.loads(summary.read_text())["checkpoint"])
        return ckpt if ckpt.is_absolute() else path / ckpt.name
    for name in ("best.pt", "last.pt"):
        if (path / name).is_file():
            return path / name
    raise TeacherError(f"run directory {str(path)!r} holds no best.pt/last.pt; train it first (mixacm train ...)")


def _robustbench_utils(name: str | None = None):
    """Import ``robustbench.utils`` (optional extra, imported only when asked for) or raise a one-line TeacherError.

    Shim: robustbench 1.1.1 does ``from autoattack import AutoAttack`` (robustbench/eval.py, run by its
    ``__init__``) but declares PyPI's ``pyautoattack``, which installs that same code as the package
    ``pyautoattack``; when no ``autoattack`` module exists we alias it (and ``autoattack.state``) to pyautoattack.
    """
    import importlib
    import importlib.util
    import sys
    import warnings

    what = f"RobustBench teacher {name!r}" if name else "RobustBench"
    try:
        if "autoattack" not in sys.modules and importlib.util.find_spec("autoattack") is None:
            import pyautoattack
            import pyautoattack.state
            sys.modules["autoattack"] = pyautoattack
            sys.modules["autoattack.state"] = pyautoattack.state
        with warnings.catch_warnings():  # its import warns (pkg_resources, timm and torch.jit deprecations)
            warnings.simplefilter("ignore")
            return importlib.import_module("robustbench.utils")
    except ImportError as e:
        if (e.name or "").split(".")[0] == "robustbench":
            raise TeacherError(f"{what} needs the optional extra: pip install 'mixacm[robustbench]' (or pass a local "
                               f"checkpoint as teacher=PATH)") from None
        raise TeacherError(f"{what}: robustbench is installed but its import failed ({type(e).__name__}: {e}); "
                           f"pip install 'mixacm[robustbench]' (it pins what robustbench needs, e.g. setuptools<81 "
                           f"for pkg_resources)") from None


def _rb_model_dir(cache_dir: Path | None) -> Path:
    return cache_dir if cache_dir is not None else Path.home() / ".cache" / "mixacm" / "robustbench"


def _rb_file(name: str, cache_dir: Path | None) -> Path:
    """Where RobustBench's load_model keeps (and downloads) name: model_dir/dataset/threat_model/NAME.pt."""
    info = ROBUSTBENCH_TEACHERS[name]
    return _rb_model_dir(cache_dir) / info.dataset / info.threat_model / f"{name}.pt"


def _rb_to_ours(state: dict[str, Tensor], layout: str) -> dict[str, Tensor]:
    """RobustBench state-dict keys -> ours (see _RB_LAYOUTS)."""
    if layout == "dm":
        return dict(state)
    if layout == "normalize_model":
        out = {}
        for k, v in state.items():
            if k.startswith("model."):
                out["net." + k.removeprefix("model.")] = v
            elif k in ("normalize.mean", "normalize.std"):
                out[k.removeprefix("normalize.")] = v.reshape(-1, 1, 1)
            else:
                out[k] = v  # reported as unexpected by the strict load
        return out
    raise ValueError(f"unknown RobustBench layout {layout!r}; valid: {', '.join(_RB_LAYOUTS)}")


def _rb_normalisation(rb: nn.Module, layout: str) -> tuple[Tensor, Tensor]:
    """(mean, std) that RobustBench's own model applies (flattened)."""
    norm = rb.normalize if layout == "normalize_model" else rb
    return norm.mean.detach().flatten().cpu(), norm.std.detach().flatten().cpu()


def _default_normalisation_fits(info: RobustBenchTeacher) -> bool:
    """Whether info.arch built with its defaults (as teacher=PATH with teacher_model=ARCH does) normalises as the
    RobustBench model does. Builds the model (about 1.5 s for WRN-70-16); used only in an error message."""
    m = _build(info.arch, info.num_classes, 3)
    return (torch.allclose(m.mean.flatten(), torch.tensor(info.mean), rtol=0, atol=1e-6)
            and torch.allclose(m.std.flatten(), torch.tensor(info.std), rtol=0, atol=1e-6))


def _load_robustbench(name: str, in_channels: int, cache_dir: Path | None) -> tuple[nn.Module, RobustBenchTeacher]:
    """Load RobustBench model name (via RobustBench's own load_model, which downloads to
    ``cache_dir/DATASET/THREAT_MODEL/NAME.pt`` unless that file exists; cache_dir None -> ~/.cache/mixacm/robustbench)
    and move its weights into our architecture (strict keys), with the normalisation of ROBUSTBENCH_TEACHERS."""
    if name not in ROBUSTBENCH_TEACHERS:
        raise TeacherError(f"unknown RobustBench teacher {name!r}; valid: {', '.join(ROBUSTBENCH_TEACHERS)}")
    info = ROBUSTBENCH_TEACHERS[name]
    if in_channels != 3:
        raise TeacherError(f"RobustBench teacher {name!r} takes 3 input channels (RGB {info.dataset}), the data has "
                           f"{in_channels}; use a teacher trained on the student's dataset")
    load_model = _robustbench_utils(name).load_model
    source = f"robustbench:{name}"
    target = _rb_model_dir(cache_dir) / info.dataset / info.threat_model / f"{name}.pt"
    if not target.is_file():  # minutes of silence otherwise
        print(f"mixacm: downloading RobustBench teacher {name} to {target} (once)", file=sys.stderr, flush=True)
    try:
        rb = load_model(model_name=name, dataset=info.dataset, threat_model=info.threat_model,
                        model_dir=str(_rb_model_dir(cache_dir)))
    except Exception as e:  # network errors come in many types (URLError, requests, gdown)
        why = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
        file = _rb_file(name, cache_dir)
        if file.is_file():  # not (only) a download problem: the file there is unreadable, truncated or foreign
            raise TeacherError(f"RobustBench could not load its file {file} for teacher {name!r} ({why}); delete it "
                               f"and rerun online to download it again") from None
        if info.layout != "dm":  # e.g. Salman2020Do_R50: the file holds the bare torchvision net's keys
            local = f"not as teacher=PATH: that file's keys are RobustBench's {info.layout} layout, not {info.arch}'s"
        elif not _default_normalisation_fits(info):  # a raw state dict would silently get the default mean/std
            local = (f"not as teacher=PATH: {info.arch} would get its default normalisation, not {info.dataset}'s "
                     f"mean={info.mean} std={info.std}")
        else:
            local = f"or pass that file as teacher=PATH with teacher_model={info.arch}"
        raise TeacherError(f"could not download RobustBench teacher {name!r} ({why}); go online once, or put its "
                           f"RobustBench file at {file} (then it loads offline), {local}") from None
    want_mean, want_std = torch.tensor(info.mean), torch.tensor(info.std)
    rb_mean, rb_std = _rb_normalisation(rb, info.layout)
    if not (torch.allclose(rb_mean, want_mean, rtol=0, atol=1e-6)
            and torch.allclose(rb_std, want_std, rtol=0, atol=1e-6)):
        raise TeacherError(f"{source}: RobustBench normalises with mean={rb_mean.tolist()} std={rb_std.tolist()}, "
                           f"ROBUSTBENCH_TEACHERS says {info.mean}/{info.std}; fix the table in mixacm/teachers.py")
    state = _rb_to_ours(rb.state_dict(), info.layout)
    del rb
    model = _build(info.arch, info.num_classes, in_channels, mean=info.mean, std=info.std)
    load_state_strict(model, state, source=source, expected=info.arch)
    if not (torch.equal(model.mean.flatten(), want_mean) and torch.equal(model.std.flatten(), want_std)):
        raise TeacherError(f"{source}: {info.arch} applies mean={model.mean.flatten().tolist()} "
                           f"std={model.std.flatten().tolist()}, expected {info.mean}/{info.std}")
    return model.eval(), info


DEFAULT_TEACHER_CACHE = Path("runs") / "_teachers"  # where config: teachers are trained when no cache_dir is given


@dataclass(frozen=True)
class ConfigTeacher:
    """A teacher given as ``config:PATH``: its config and the cache run directory it is trained into. Training it is
    the trainer's job (mixacm.train trains a missing one on first use); this module only finds and loads it."""
    path: Path       # the config file
    cfg: TrainConfig
    run_dir: Path    # cache_root/STEM-DIGEST, DIGEST of the resolved config: another config trains another teacher

    @property
    def finished(self) -> bool:
        """Whether its training run has completed (summary.json is written last)."""
        return (self.run_dir / "summary.json").is_file()

    @property
    def interrupted(self) -> bool:
        """Whether an unfinished training run left a checkpoint to resume from."""
        return not self.finished and (self.run_dir / "last.pt").is_file()


def config_teacher(spec: str, cache_root: str | Path | None = None) -> ConfigTeacher:
    """The teacher a ``config:PATH`` spec describes (its config file must exist); cache_root None -> runs/_teachers."""
    from .config import load_config, to_dict

    path = Path(spec.removeprefix("config:"))
    if not path.is_file():
        raise TeacherError(f"teacher config {str(path)!r} not found; give config:PATH/TO/teacher.toml")
    cfg = load_config(path)
    digest = hashlib.sha256(json.dumps(to_dict(cfg), sort_keys=True).encode()).hexdigest()[:12]
    root = Path(cache_root) if cache_root is not None else DEFAULT_TEACHER_CACHE
    return ConfigTeacher(path=path, cfg=cfg, run_dir=root / f"{path.stem}-{digest}")


def load_teacher_model(spec: str, *, model_name: str | None = None, num_classes: int = 10, in_channels: int = 3,
                       cache_dir: str | Path | None = None) -> tuple[nn.Module, dict]:
    """Load the teacher described by spec (see module docstring). Returns (model in eval mode, info dict with
    'source', 'num_classes', 'expected_acc' (None when unknown), 'arch')."""
    cache = Path(cache_dir) if cache_dir is not None else None
    if spec.startswith("robustbench:"):
        name = spec.split(":", 1)[1]
        model, rb = _load_robustbench(name, in_channels, cache)
        return model, {"source": spec, "num_classes": rb.num_classes, "expected_acc": rb.clean_acc, "arch": rb.arch}
    if spec.startswith("config:"):
        teacher = config_teacher(spec, cache)
        if not teacher.finished:
            raise TeacherError(f"teacher {spec!r} has not been trained into {str(teacher.run_dir)!r} yet; mixacm train "
                               f"trains it on first use, or run: mixacm train {teacher.path} --run-dir "
                               f"{teacher.run_dir}")
        spec = str(teacher.run_dir)
    path = Path(spec)
    if not path.exists():
        raise TeacherError(f"teacher {spec!r} is neither an existing path nor a known name; use robustbench:NAME "
                           f"(valid: {', '.join(ROBUSTBENCH_TEACHERS)}), a checkpoint, a run dir or config:PATH")
    if path.is_dir():
        path = _resolve_run_dir(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            state = load_file(str(path))
        except Exception as e:
            raise CheckpointError(f"teacher {str(path)!r} is not a readable safetensors file ({e}); re-export it") \
                from None
        payload: object = state
    else:
        payload = load_checkpoint(path)
    if is_package_checkpoint(payload):
        model = load_package_model(payload, source=str(path))
        exp = payload.get("val_acc")  # the checkpoint's own held-out accuracy
        return model, {"source": str(path), "num_classes": int(payload["num_classes"]), "expected_acc": exp,
                       "arch": payload["model"]}
    if model_name is None:
        raise TeacherError(f"teacher {str(path)!r} is a raw state dict; say its architecture with teacher_model=NAME "
                           f"(e.g. wrn-28-10)")
    state = _state_dict_of(payload, str(path))
    model = _build(model_name, num_classes, in_channels)
    load_state_strict(model, state, source=str(path), expected=model_name)
    return model.eval(), {"source": str(path), "num_classes": num_classes, "expected_acc": None, "arch": model_name}


# ------------------------------------------------------------------------------------------------------ gate
@torch.no_grad()
def clean_accuracy(model: nn.Module, x: Tensor, y: Tensor, *, batch_size: int = 512,
                   device: torch.device | str = "cpu") -> float:
    was = model.training
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size].to(device))
        correct += int((logits.argmax(1).cpu() == y[i:i + batch_size]).sum())
    model.train(was)
    return correct / max(len(x), 1)


def accuracy_gate(model: nn.Module, x: Tensor, y: Tensor, *, expected: float | None, tolerance: float = 0.10,
                  num_classes: int = 10, name: str = "teacher", batch_size: int = 512,
                  device: torch.device | str = "cpu") -> float:
    """Measure clean accuracy on held-out (x, y); refuse (TeacherError) if it is far below the expected value.

    expected None -> the floor is twice chance accuracy (2/K), which still catches a chance-level model.
    """
    acc = clean_accuracy(model, x, y, batch_size=batch_size, device=device)
    floor = (expected - tolerance) if expected is not None else 2.0 / num_classes
    if acc < floor:
        want = (f"the expected {expected:.1%} (tolerance {tolerance:.0%})" if expected is not None
                else f"twice chance ({floor:.1%})")
        raise TeacherError(f"{name} has clean accuracy {acc:.1%} on {len(x)} held-out examples, far below {want}; "
                           f"check the checkpoint and teacher_model, or set teacher_expected_acc")
    return acc


__all__ = ["FrozenTeacher", "freeze", "TeacherError", "ROBUSTBENCH_TEACHERS", "RobustBenchTeacher",
           "ConfigTeacher", "config_teacher", "load_teacher_model", "load_package_model", "accuracy_gate",
           "clean_accuracy"]
