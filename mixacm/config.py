"""Training configuration: one flat dataclass whose defaults are the paper's CIFAR settings, plus file/CLI parsing.

Sources (``../shared/paper``): main paper Sec. 6 "Training Details" and Supp. A.1 "Optimizer Setting",
"Augmentation", "Adversarial Training". Flat fields keep ``--set key=value`` unambiguous; config files may group
keys in TOML tables (``[optim]``), the table names are only for reading and are dropped when parsing.
"""
from __future__ import annotations

import dataclasses
import json
import tomllib
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from . import attacks as _attacks
from . import data as _data
from . import losses as _losses
from .models import common as _models

EPS_FIELDS = ("eps", "attack_step")  # l-inf radii: accept "8/255" or 0.0314; values >= 1 are a unit mistake
# Valid values of the string fields. Names another module defines (and checks) are its own table, read here; the
# rest are defined here, their one place. "preset" is PRESETS' keys (set below, once PRESETS exists).
CHOICES: dict[str, tuple[str, ...]] = {
    "schedule": ("cosine", "constant", "piecewise"),
    "weight_decay_on": ("all", "conv_fc_weights"),
    "augment": tuple(_data.AUGMENTS),
    "transform": tuple(_losses.TRANSFORMS),
    "feature_loss": ("acm", "direct"),
    "select_metric": ("val_acc", "val_rob", "last"),
    "device": ("auto", "cpu", "cuda"),
    "preset": (),
    "feature_point": tuple(_models.FEATURE_POINTS),
    "acm_reduction": tuple(_losses.REDUCTIONS),
    "awp_base": ("trades", "pgd_at"),
    "attack_bn": ("eval", "train"),
    "mapping": tuple(_losses.MAPPINGS),
}


class ConfigError(ValueError):
    """A bad configuration value; the message is one line that names the fix."""


@dataclass
class TrainConfig:
    # --- what to train --------------------------------------------------------------------------------------
    method: str = "mixacm"            # key of mixacm.methods.METHODS
    model: str = "wrn-34-10"          # student; WRN-34-10 for the main CIFAR-10 runs (Sec. 6 "Training Details")
    dataset: str = "cifar10"          # key of mixacm.data.DATASETS
    data_root: str | None = None      # dataset directory (ImageFolder root etc.); None -> the data module's default
    data_fraction: float = 1.0        # stratified seeded subset of the training split (Fig. 3)
    val_fraction: float = 0.02        # held out of the training split for model selection (never the test set)
    preset: str = "cifar"             # provenance of the defaults: "cifar" (Sec. 6) or "imagenet" (Supp. A.1)
    seed: int = 0
    # --- teacher (methods mixacm, kd, ard) -------------------------------------------------------------------
    teacher: str | None = None        # "robustbench:NAME" | checkpoint path | run dir | "config:PATH.toml"
    teacher_model: str | None = None  # architecture of a raw state-dict / safetensors teacher
    teacher_num_classes: int | None = None  # None -> the student's; differs for transfer (Table 5)
    teacher_expected_acc: float | None = None  # accuracy gate: expected clean accuracy in [0,1]; None -> inferred
    teacher_gate_tolerance: float = 0.10       # refuse the teacher if held-out accuracy < expected - tolerance
    teacher_gate_n: int = 500                  # held-out examples used by the gate
    teacher_cache: str | None = None  # where teachers are downloaded / trained once; None -> <run dir>/../_teachers
    # --- optimisation (Supp. A.1 "Optimizer Setting") --------------------------------------------------------
    epochs: int = 200
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    # the parameters weight decay applies to: "all" (torch.optim.SGD's weight_decay, as every PyTorch code) or
    # "conv_fc_weights" (Madry et al.'s and Free-AT's TensorFlow codes: L2 on the conv and fc kernels only, no
    # batch-norm parameters or biases)
    weight_decay_on: str = "all"
    schedule: str = "cosine"          # cosine annealing without restarts, per step
    # the schedule read this many optimiser steps ahead: Rice et al.'s code sets iteration i's lr at
    # epoch + (i + 1) / n (train_cifar.py), one step ahead of the steps taken
    lr_lead_steps: int = 0
    warmup_epochs: float = 0.0        # ImageNet: 5 epochs linear warm-up ...
    warmup_start_lr: float = 0.0      # ... from 0.16 to lr=0.8
    max_steps_per_epoch: int | None = None  # CPU smoke runs only; None = full epochs
    # --- MixACM objective (Sec. 5.4; values Sec. 6 "Training Details", Supp. A.4.5) --------------------------
    alpha_acm: float = 5000.0
    alpha_kld: float = 0.95
    temperature: float = 10.0         # gamma of the KD loss
    mixup_alpha: float = 1.0          # lambda ~ Beta(1, 1) on CIFAR, 0.2 on ImageNet (Supp. A.1 "Augmentation")
    use_kd: bool = True               # ablation switches (Table 6)
    use_mixup: bool = True
    use_acm: bool = True
    use_ce: bool = True               # "Only ACM" keeps CE (its 92.87% accuracy needs a trained classifier)
    blocks: list[int] | None = None   # 1-based blocks for the feature loss (Table 7); None = all
    transform: str = "teacher_maxpool"  # channel-count mismatch (Sec. 5.2, Table 9)
    mapping: str = "max"              # g_c (Sec. 5.1)
    # Per-block distance summed or averaged over channels? The paper does not say; alpha_acm=5000 only fits "mean":
    # on digits (wrn-10-1 student, 15 epochs) "sum" left the student at chance (val acc 0.29, ACM term x5000 ~ 8600
    # vs CE ~ 2) while "mean" gave val acc 0.98 / robust 0.63 (teacher 1.00 / 0.90); CPU-scale CIFAR-10 agrees ("sum"
    # stays at chance, docs/implementation-choices.md). mixacm.losses.acm_loss's own default is the formula's "sum".
    acm_reduction: str = "mean"
    # alpha_acm stated at another architecture's block widths (e.g. "wrn-34-10", the paper's CIFAR student): block
    # i's channel-mean distance then weighs alpha_acm * C_i / C_ref_i (mixacm.losses.acm_loss, reference_channels),
    # the per-channel weight alpha_acm has on the reference. None = alpha_acm literally, whatever the student.
    alpha_acm_reference: str | None = None
    feature_loss: str = "acm"         # "direct" = feature L2 of Table 8
    feature_point: str = "pre"        # block feature before ("pre") or after ("post") the next BN+act
    # --- adversarial baselines (Supp. A.1 "Adversarial Training") --------------------------------------------
    eps: float = 8 / 255
    attack_step: float = 2 / 255
    attack_steps: int = 7             # PGD-7 AT; ARD uses the same attack
    fast_at_step: float = 1.25        # Fast-AT step as a multiple of eps (Wong et al. 2020)
    # BatchNorm mode of the student while pgd_at, ard and the compared methods craft their training attack: "eval"
    # (the project's default, and the TRADES family's code: attack forwards neither use nor move the running
    # statistics) or "train" (Madry et al.'s and Rice et al.'s PGD-AT, AT-AWP and ARD code: batch statistics, and
    # every attack forward moves the running statistics).
    attack_bn: str = "eval"
    # pgd_at and AWP on pgd_at: the two train-mode forwards the Rice et al. and AT-AWP training loops run only to log
    # losses (the attack's final loss on x', the clean batch after the optimiser step). They move the BatchNorm
    # running statistics, so a replica of those codes runs them too (without gradients).
    bn_logging_passes: bool = False
    # --- compared methods (mixacm.baselines; each paper's CIFAR-10 setting) ----------------------------------
    trades_beta: float = 6.0          # TRADES beta (Zhang et al. 2019, Sec. 5); also FAT-TRADES, AWP-TRADES
    mart_lambda: float = 6.0          # MART lambda (Wang et al. 2020, WRN-34-10)
    awp_gamma: float = 5e-3           # AWP weight-perturbation size (Wu et al. 2020)
    # AWP off during the first epochs: TRADES-AWP's code tests `epoch >= 10` on 1-based epochs, so 9 epochs without
    # AWP (AT-AWP's code: 0, from the first epoch)
    awp_warmup_epochs: int = 9
    awp_base: str = "trades"          # AWP on top of TRADES (Table 1 row) or PGD-AT
    fat_tau: int = 3                  # FAT: steps after the first misclassification (Zhang et al. 2020)
    # FAT's tau schedule: tau starts at 0 and rises by one after each of these fractions of training, up to fat_tau
    # (FAT code's dynamic tau: 0 up to epoch 30, 1 to 50, 2 to 70, 3 after, of 85); None: fat_tau throughout
    fat_tau_milestones: list[float] | None = None
    free_replays: int = 1             # Free-AT replays m of each minibatch (8 CIFAR, 4 ImageNet; Shafahi et al.)
    lr_milestones: list[float] = dataclasses.field(default_factory=lambda: [0.5, 0.75])  # schedule="piecewise":
    # lr x 0.1 at these fractions of training (Rice et al. 2020: epochs 100 and 150 of 200)
    # --- data pipeline ---------------------------------------------------------------------------------------
    augment: str = "crop_flip"        # pad-4 random crop + horizontal flip (Supp. A.1 "Augmentation")
    # --- model selection on the validation split -------------------------------------------------------------
    select_metric: str = "val_acc"    # "val_rob" = PGD robust accuracy on validation; "last" = final epoch
    val_attack_steps: int = 10
    val_n: int | None = 1000          # cap on validation examples per epoch (robust eval cost)
    # --- runtime ---------------------------------------------------------------------------------------------
    device: str = "auto"              # CUDA when present, else CPU
    bf16: bool = True                 # bf16 autocast on CUDA (ignored on CPU)
    channels_last: bool = True        # NHWC student, teacher, batches (CUDA and CPU: 1.1-1.3x per CPU step)
    num_threads: int | None = None    # torch.set_num_threads on CPU
    deterministic: bool = True
    progress: bool = True
    eval_batch_size: int = 512
    # distributed / throughput (torchrun: batch_size is the GLOBAL batch, split evenly over the ranks)
    sync_bn: bool = False             # SyncBatchNorm across ranks (CUDA + torchrun only); converted before DDP
    cudnn_benchmark: bool = True      # cudnn.benchmark; only takes effect when deterministic = false
    compile: bool = False             # torch.compile the student (its DDP wrapper under torchrun)
    num_workers: int | None = None    # DataLoader workers of streamed data sets (ImageNet); None -> min(8, cpus/ranks)
    stream_data: bool | None = None   # None: stream ImageNet and ImageFolder trees too large for RAM; else force
    log_every: int = 50               # read loss terms / accuracy (host sync + NaN check) every N steps

    # One contract however the config is built (TrainConfig(**d), dataclasses.replace, load_config, assignment):
    # every value is coerced to its field's type ("8/255" -> 0.0313..) and its choices checked when it is set,
    # and the whole config is checked once built (cross-field rules need every field).
    def __setattr__(self, key: str, value: Any) -> None:
        if key not in _HINTS:
            raise ConfigError(f"unknown config key {key!r}; valid keys: {_valid_keys()}")
        value = _coerce(key, value, _HINTS[key])
        if key in CHOICES and value not in CHOICES[key]:
            raise ConfigError(f"{key}={value!r} is not valid; choose one of: {', '.join(CHOICES[key])}")
        object.__setattr__(self, key, value)

    def __post_init__(self) -> None:
        check(self)


def imagenet_preset() -> TrainConfig:
    """Supp. A.1: ResNet-50, 120 epochs, SGD momentum 0.9, wd 5e-5, batch 2048, lr 0.8 with linear warm-up from
    0.16 over 5 epochs then cosine; mixup alpha 0.2; test eps 2/255 or 4/255 (Table 2)."""
    return TrainConfig(preset="imagenet", model="resnet50", dataset="imagenet", epochs=120, batch_size=2048,
                       lr=0.8, weight_decay=5e-5, nesterov=False, warmup_epochs=5.0, warmup_start_lr=0.16,
                       mixup_alpha=0.2, eps=4 / 255, attack_step=1 / 255)


PRESETS = {"cifar": TrainConfig, "imagenet": imagenet_preset}
CHOICES["preset"] = tuple(PRESETS)
FIELD_NAMES = tuple(f.name for f in fields(TrainConfig))


def _valid_keys() -> str:
    return ", ".join(FIELD_NAMES)


def parse_eps(key: str, value: Any) -> float:
    """"8/255" -> 0.0313..; 0.0314 -> 0.0314; 8 -> ConfigError (a radius on the [0,1] pixel scale must be < 1).
    The rule is mixacm.attacks.parse_eps, the one parser of radii; this names the field and raises ConfigError."""
    return _attacks.parse_eps(value, key=key, error=ConfigError)


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check/convert one value against the dataclass annotation; raise a one-line ConfigError."""
    if key in EPS_FIELDS:
        return parse_eps(key, value)
    args = typing.get_args(tp)
    if type(None) in args:  # Optional[X]
        if value is None or (isinstance(value, str) and value.lower() in {"none", "null"}):
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(key, value, inner[0])
    origin = typing.get_origin(tp)
    want = getattr(tp, "__name__", str(tp))
    if origin is list:
        (elem,) = typing.get_args(tp)
        if isinstance(value, str):  # "2,3,4" from the command line
            value = [v for v in value.replace("+", ",").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}={value!r} must be a list like [2, 3, 4]")
        return [_coerce(key, v, elem) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise ConfigError(f"{key}={value!r} must be true or false")
    if tp is int:
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ConfigError(f"{key}={value!r} must be an integer") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}={value!r} must be an integer")
        return value
    if tp is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{key}={value!r} must be a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}={value!r} must be a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}={value!r} must be a string")
        return value
    raise ConfigError(f"{key}: unsupported type {want}")  # pragma: no cover


_HINTS = typing.get_type_hints(TrainConfig)


def apply_overrides(cfg: TrainConfig, values: dict[str, Any]) -> TrainConfig:
    """Return a copy of cfg with values set; unknown keys and wrong types raise a one-line ConfigError."""
    for key in values:
        if key not in _HINTS:
            raise ConfigError(f"unknown config key {key!r}; valid keys: {_valid_keys()}")
    return dataclasses.replace(cfg, **values)  # coerced by __setattr__, checked by __post_init__


def check(cfg: TrainConfig) -> TrainConfig:
    """Value checks that need no other module (names of methods/models/datasets are checked in train)."""
    for key, valid in CHOICES.items():
        if getattr(cfg, key) not in valid:
            raise ConfigError(f"{key}={getattr(cfg, key)!r} is not valid; choose one of: {', '.join(valid)}")
    if cfg.fat_tau_milestones is not None and not all(0 < m < 1 for m in cfg.fat_tau_milestones):
        raise ConfigError(f"fat_tau_milestones={cfg.fat_tau_milestones} must be fractions of training in (0, 1), e.g. "
                          f"[0.35, 0.59, 0.82]; or none for a fixed fat_tau")
    if cfg.lr_milestones is None or not all(0 < m < 1 for m in cfg.lr_milestones):
        raise ConfigError(f"lr_milestones={cfg.lr_milestones} must be fractions of training in (0, 1), e.g. [0.5, 0.75]")
    if cfg.lr_lead_steps < 0:
        raise ConfigError(f"lr_lead_steps={cfg.lr_lead_steps} must be >= 0 (1 for Rice et al.'s schedule)")
    for key in ("epochs", "batch_size", "attack_steps", "teacher_gate_n", "eval_batch_size", "free_replays"):
        if getattr(cfg, key) < 1 and not (key == "attack_steps" and getattr(cfg, key) == 0):
            raise ConfigError(f"{key}={getattr(cfg, key)} must be >= 1")
    if not 0 < cfg.data_fraction <= 1:
        raise ConfigError(f"data_fraction={cfg.data_fraction} must be in (0, 1]")
    if not 0 <= cfg.val_fraction < 1:
        raise ConfigError(f"val_fraction={cfg.val_fraction} must be in [0, 1)")
    if not 0 <= cfg.alpha_kld <= 1:
        raise ConfigError(f"alpha_kld={cfg.alpha_kld} must be in [0, 1] (weights (1-a)*L_mix + a*L_kld, Sec. 5.4)")
    if cfg.temperature <= 0 or cfg.lr <= 0 or cfg.mixup_alpha < 0 or cfg.alpha_acm < 0:
        raise ConfigError("temperature and lr must be > 0; mixup_alpha and alpha_acm must be >= 0")
    if cfg.blocks is not None and (not cfg.blocks or min(cfg.blocks) < 1):
        raise ConfigError(f"blocks={cfg.blocks} must list 1-based block numbers, e.g. [2, 3, 4]; or none for all")
    if cfg.alpha_acm_reference is not None and cfg.acm_reduction != "mean":
        raise ConfigError(f"alpha_acm_reference={cfg.alpha_acm_reference!r} needs acm_reduction='mean' (with 'sum' "
                          f"a block's weight does not depend on its width); drop one of the two")
    if cfg.select_metric == "val_rob" and cfg.val_fraction == 0:
        raise ConfigError("select_metric='val_rob' needs a validation split; set val_fraction > 0")
    return cfg


def _flatten(data: dict[str, Any]) -> dict[str, Any]:
    # TOML tables only group keys: {"optim": {"lr": 0.1}} -> {"lr": 0.1}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value))
        else:
            flat[key] = value
    return flat


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found; give a path such as configs/digits/mixacm.toml")
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text())
        elif path.suffix == ".toml":
            data = tomllib.loads(path.read_text())
        else:
            raise ConfigError(f"config file {str(path)!r}: use a .toml or .json file")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"config file {str(path)!r} does not parse: {e}") from None
    data = _flatten(data)
    base = data.pop("base", None)
    if base is not None:  # file inheritance: base = "../table3/cifar10_mixacm.toml" (relative to this file)
        parent = _read_file((path.parent / base).resolve())
        parent.update(data)
        data = parent
    teacher = data.get("teacher")
    if isinstance(teacher, str) and teacher.startswith("config:"):  # teacher config paths are file-relative
        data["teacher"] = "config:" + str((path.parent / teacher[len("config:"):]).resolve())
    return data


def parse_set(items: list[str]) -> dict[str, Any]:
    """["lr=0.05", "blocks=[2,3]"] -> {"lr": 0.05, "blocks": [2, 3]}; values parse as TOML, else stay strings."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: write key=value, e.g. --set lr=0.05")
        key, raw = item.split("=", 1)
        key, raw = key.strip(), raw.strip()
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out[key] = value
    return out


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | list[str] | None = None) -> TrainConfig:
    """Defaults <- preset <- config file (with its `base` chain) <- overrides; then value checks."""
    data = _read_file(Path(path)) if path is not None else {}
    if isinstance(overrides, list):
        overrides = parse_set(overrides)
    data.update(overrides or {})
    preset = data.get("preset", "cifar")
    if preset not in PRESETS:
        raise ConfigError(f"preset={preset!r} is not valid; choose one of: {', '.join(PRESETS)}")
    return check(apply_overrides(PRESETS[preset](), data))


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuild a config stored in a run dir or checkpoint (strict: unknown keys are an error)."""
    preset = data.get("preset", "cifar")
    return check(apply_overrides(PRESETS.get(preset, TrainConfig)(), data))


__all__ = ["TrainConfig", "ConfigError", "imagenet_preset", "load_config", "parse_set", "apply_overrides",
           "parse_eps", "check", "to_dict", "from_dict", "PRESETS", "CHOICES", "FIELD_NAMES"]
