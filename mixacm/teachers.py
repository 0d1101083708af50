"""Robust teachers: load (RobustBench by name, local checkpoint, a run of this package), freeze, and gate on accuracy.

Teacher specs (``TrainConfig.teacher``):
    "robustbench:NAME"     a RobustBench model from ROBUSTBENCH_TEACHERS (optional extra ``mixacm[robustbench]``,
                           needs network the first time); weights are loaded into our own architecture so that
                           block features follow the one feature contract of mixacm.models.
    PATH.pt / PATH.pth     a checkpoint of this package (architecture rebuilt from it) or a raw state dict
                           (needs ``teacher_model``); always loaded with ``weights_only=True`` (no code runs).
    PATH.safetensors       a raw state dict in safetensors format (needs ``teacher_model``).
    RUN_DIR                a run directory of ``mixacm train``: its selected checkpoint.
    "config:PATH.toml"     a teacher trained by this package from that config (trained once, then reused).

The accuracy gate measures the teacher's clean accuracy on held-out examples and refuses a teacher far below
its expected value (RobustBench once served a model at chance accuracy).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from .checkpoint import CheckpointError, is_package_checkpoint, load_checkpoint, load_state_strict


class TeacherError(ValueError):
    """A teacher that cannot be used; the message is one line that names the fix."""


@dataclass(frozen=True)
class RobustBenchTeacher:
    arch: str            # our architecture name (mixacm.models.build_model)
    dataset: str         # RobustBench dataset name
    num_classes: int
    clean_acc: float     # RobustBench leaderboard clean accuracy (test set), used only by the gate
    note: str = ""


# Teachers the paper used (Sec. 6 "Pre-Trained Robust Models"; Supp. A.1 "Teacher Models"), Linf threat model.
ROBUSTBENCH_TEACHERS: dict[str, RobustBenchTeacher] = {
    "Gowal2020Uncovering_28_10_extra": RobustBenchTeacher("gowal-wrn-28-10", "cifar10", 10, 0.8948,
                                                          "WRN-28-10, most CIFAR experiments"),
    "Gowal2020Uncovering_34_20": RobustBenchTeacher("gowal-wrn-34-20", "cifar10", 10, 0.8564,
                                                    "WRN-34-20, Tables 4/8"),
    "Gowal2020Uncovering_70_16_extra": RobustBenchTeacher("gowal-wrn-70-16", "cifar10", 10, 0.9110,
                                                          "not in the paper; a stronger CIFAR-10 teacher"),
    "Gowal2020Uncovering_extra": RobustBenchTeacher("gowal-wrn-70-16", "cifar100", 100, 0.6915,
                                                    "CIFAR-100; RobustBench has no Gowal WRN-28-10 for CIFAR-100"),
    "Salman2020Do_R50": RobustBenchTeacher("resnet50", "imagenet", 1000, 0.6402, "ResNet-50, Table 2"),
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
        self.feature_channels = tuple(getattr(model, "feature_channels", ()))
        super().train(False)

    def train(self, mode: bool = True) -> FrozenTeacher:  # noqa: ARG002 - frozen by construction
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    @torch.no_grad()
    def forward_features(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        return self.model.forward_features(x, feature_point=self.feature_point)


def freeze(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# --------------------------------------------------------------------------------------------------- loading
def _build(arch: str, num_classes: int, in_channels: int) -> nn.Module:
    from .models import build_model
    try:
        return build_model(arch, num_classes=num_classes, in_channels=in_channels)
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
    name = payload["model"]
    if model is None:
        model = build_model(name, num_classes=int(payload["num_classes"]), in_channels=int(payload["in_channels"]),
                            feature_point=payload.get("feature_point", "pre"))
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


def _load_robustbench(name: str, in_channels: int, cache_dir: Path | None) -> tuple[nn.Module, RobustBenchTeacher]:
    if name not in ROBUSTBENCH_TEACHERS:
        raise TeacherError(f"unknown RobustBench teacher {name!r}; valid: {', '.join(ROBUSTBENCH_TEACHERS)}")
    info = ROBUSTBENCH_TEACHERS[name]
    try:
        from robustbench.utils import load_model  # optional extra, imported only when asked for
    except ImportError:
        raise TeacherError(f"RobustBench teacher {name!r} needs the optional extra: pip install 'mixacm[robustbench]'"
                           f" (or pass a local checkpoint as teacher=PATH)") from None
    try:
        rb = load_model(model_name=name, dataset=info.dataset, threat_model="Linf",
                        model_dir=str(cache_dir or Path.home() / ".cache" / "mixacm" / "robustbench"))
    except Exception as e:  # network errors come in many types (URLError, requests, gdown)
        raise TeacherError(f"could not download RobustBench teacher {name!r} ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:120] if str(e) else ''}); go online once or pass a local "
                           f"checkpoint as teacher=PATH with teacher_model={info.arch}") from None
    state = rb.state_dict()
    model = _build(info.arch, info.num_classes, in_channels)
    own = set(model.state_dict())
    for prefix in ("", "model.", "1.", "module."):  # RobustBench wraps ImageNet models in (normaliser, model)
        cand = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
        if set(cand) == own:
            state = cand
            break
    load_state_strict(model, state, source=f"robustbench:{name}", expected=info.arch)
    return model, info


def _config_teacher(path: Path, cache_root: Path) -> Path:
    """Train (once) the teacher described by a config file; return its run directory."""
    from .config import load_config, to_dict
    from .train import train

    cfg = load_config(path)
    digest = hashlib.sha256(json.dumps(to_dict(cfg), sort_keys=True).encode()).hexdigest()[:12]
    run_dir = cache_root / f"{path.stem}-{digest}"
    if not (run_dir / "summary.json").is_file():
        train(cfg, run_dir, resume=(run_dir / "last.pt").is_file())
    return run_dir


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
        cfg_path = Path(spec.split(":", 1)[1])
        if not cfg_path.is_file():
            raise TeacherError(f"teacher config {str(cfg_path)!r} not found; give config:PATH/TO/teacher.toml")
        spec = str(_config_teacher(cfg_path, cache or Path("runs") / "_teachers"))
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
           "load_teacher_model", "load_package_model", "accuracy_gate", "clean_accuracy"]
