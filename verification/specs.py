"""Every paper table cell -> a runnable experiment spec (gpu tier: the paper's full settings).

``spec_for(cell)`` returns a dict::

    {"id": "table3:CIFAR-10 / Ours:PGD 20", "table", "row", "column", "kind": "train_eval" | "param_ratio",
     "train": {TrainConfig fields: method, model, dataset, teacher, epochs, alpha_acm, use_kd, use_mixup, use_acm,
               blocks, transform, feature_loss, data_fraction, eps, attack_steps, ...} | None,
     "eval": {"attacks": [..all attacks of the row..], "attack": this cell's attack, "eps": "8/255", "n": None},
     "seeds": [0, ...], "group": "<hash of train config>", "tolerance": float, "tolerance_rule": str,
     "blocked": None | "reason it cannot run here (cited method not implemented, teacher not downloadable by name)",
     "erratum": None | "known error of the paper for this cell"}

Cells of the same row share one training run per seed (``group``); a row's attacks are evaluated together.
Teachers are RobustBench names where the paper used one (``teacher = "robustbench:<name>"``); the CIFAR-100
WRN-28-10 teacher (Table 3) and the ImageNet-32x32 teacher of Hendrycks et al. (Table 5) are not downloadable by
name: set ``MIXACM_TEACHER_CIFAR100_WRN28_10`` / ``MIXACM_TEACHER_IMAGENET32_WRN28_10`` to a checkpoint path to run them.
Students share the teacher's architecture (Supp. A.1: Swish for Gowal et al. teachers -> ``gowal-wrn-D-W``).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from verification import compare, paper_data

CIFAR_EPOCHS = 200  # Sec. 6 "Training Details"
IMAGENET_EPOCHS = 120
SEEDS_PAPER_REPEATS = [0, 1, 2, 3, 4]  # "five repetitions" (Table 1 caption, Table 5 caption)

# Methods of the paper's rows that this package implements -> TrainConfig overrides.
# Checkpoint selection: robust models by held-out PGD accuracy (``val_rob``), natural ones by clean accuracy, as in
# ``configs/table*/`` (the paper does not say; one rule for the specs and the configs, tested in test_specs.py).
ROBUST = {"select_metric": "val_rob"}
METHOD_CONFIG: dict[str, dict[str, Any]] = {
    "natural": {"method": "natural", "select_metric": "val_acc"},
    "pgd_at": {"method": "pgd_at", "attack_steps": 7, "attack_step": "2/255", "eps": "8/255", **ROBUST},
    "pgd7_at": {"method": "pgd_at", "attack_steps": 7, "attack_step": "2/255", "eps": "8/255", **ROBUST},
    "fast_at": {"method": "fast_at", **ROBUST},
    "kd": {"method": "kd", **ROBUST},
    "mixacm": {"method": "mixacm", **ROBUST},
    "mixacm_no_mixup": {"method": "mixacm", "use_mixup": False, **ROBUST},
    "mixacm_randaugment": {"method": "mixacm", "augment": "randaugment", **ROBUST},
    "mixacm_ablation": {"method": "mixacm", **ROBUST},
    # the compared methods (mixacm.baselines), each with its own paper's CIFAR-10 attack: PGD-10, step 0.007
    "trades": {"method": "trades", "attack_steps": 10, "attack_step": 0.007, **ROBUST},
    "mart": {"method": "mart", "attack_steps": 10, "attack_step": 0.007, **ROBUST},
    "awp": {"method": "awp", "awp_base": "trades", "attack_steps": 10, "attack_step": 0.007, **ROBUST},
    "fat": {"method": "fat", "attack_steps": 10, "attack_step": 0.007, **ROBUST},
    # Free-AT: m replays per minibatch, epochs divided by m (Shafahi et al. 2019: m = 8 on CIFAR, 4 on ImageNet)
    "free_at": {"method": "free_at", "free_replays": 8, "epochs": CIFAR_EPOCHS // 8, **ROBUST},
    # Rice et al. 2020: PGD-10 AT, lr x 0.1 at epochs 100 and 150 of 200, best checkpoint by held-out PGD accuracy
    "at_early_stop": {"method": "pgd_at", "attack_steps": 10, "attack_step": "2/255", "schedule": "piecewise",
                      "lr_milestones": [0.5, 0.75], **ROBUST},
    # Pang et al. 2021 (bag of tricks): TRADES, 110 epochs, lr x 0.1 at 100 and 105, wd 5e-4, batch 128, eval-mode
    # BN while crafting (mixacm.baselines always crafts in eval mode)
    "bot_trades": {"method": "trades", "attack_steps": 10, "attack_step": 2 / 255, "epochs": 110,
                   "schedule": "piecewise", "lr_milestones": [100 / 110, 105 / 110], "weight_decay": 5e-4, **ROBUST},
}
# Direct feature L2 ("Full", Table 8) is an unbounded MSE: at the ACM weight 5000 it diverges in the first epoch
# (measured on CPU-scale CIFAR-10); the paper gives no weight for it, so it runs at 1 (as the cpu plan does).
DIRECT_L2_ALPHA = 1.0
# Methods left out, each with a reason a reader can check.
NOT_IMPLEMENTED = {
    "lat": "LAT perturbs latent layers of a network with a layer-specific fine-tuning schedule that its paper does not "
           "fully specify",
    "tla": "TLA adds a triplet loss over adversarial anchors with mining choices not fixed by its paper",
    "yopo": "YOPO rewrites back-propagation through the first layer (Pontryagin formulation); a faithful version needs "
            "its custom layer-wise training loop",
    "igam": "IGAM trains a discriminator on input gradients against a robust teacher (a GAN-style second model)",
    "adv_pretraining": "adversarial pre-training on down-sampled ImageNet (Hendrycks et al.) needs ImageNet-32 "
                       "pre-training before CIFAR fine-tuning",
}
TEACHER_ENV = {"cifar100": "MIXACM_TEACHER_CIFAR100_WRN28_10", "imagenet32": "MIXACM_TEACHER_IMAGENET32_WRN28_10"}
# Cells where the paper's printed number is wrong (the gpu test expects the mismatch; see test_paper_data).
ERRATA = {"table4:Depth & Channel: WRN-34-20 -> WRN-16-10:Size Ratio":
          "printed 9.227%; parameter counts give 9.276% (digits transposed?)"}


def _model_name(arch: str, gowal: bool) -> str:
    if arch == "ResNet-50":
        return "resnet50"
    d, w = arch.split("-")[1:]
    return f"{'gowal-' if gowal else ''}wrn-{d}-{w}"


def _teacher(setting: dict[str, Any]) -> tuple[str | None, str | None]:
    """(teacher spec for TrainConfig.teacher, blocking reason)."""
    if setting.get("teacher") is None:
        return None, None
    if setting.get("teacher_robustbench"):
        return f"robustbench:{setting['teacher_robustbench']}", None
    env = TEACHER_ENV.get(setting.get("teacher_dataset") or "")
    if env and os.environ.get(env):
        return os.environ[env], None
    return None, (f"teacher {setting['teacher']} ({setting.get('teacher_dataset')}) is not downloadable by name"
                  + (f"; set {env}=CHECKPOINT" if env else ""))


def _row_attacks(cell: dict[str, Any]) -> list[str]:
    t = paper_data.load_table(cell["table"])
    same = [c for c in t["cells"] if c["row"] == cell["row"] and c["setting"].get("method") == cell["setting"]["method"]
            and c["setting"].get("eps") in (None, cell["setting"].get("eps"))]
    atts = []
    for c in same:
        a = c["setting"].get("attack")
        if a and a != "clean" and a not in atts:
            atts.append(a)
    return atts


def train_config(cell: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    s = cell["setting"]
    method = s.get("method")
    if method in NOT_IMPLEMENTED:
        return None, (f"method {method!r} ({cell.get('cited_ref') or 'cited'}) is not implemented: "
                      f"{NOT_IMPLEMENTED[method]}")
    if method not in METHOD_CONFIG:
        return None, f"no spec for method {method!r}; valid: {', '.join(sorted(METHOD_CONFIG))}"
    gowal = (s.get("teacher_robustbench") or "").startswith("Gowal") or (
        s["dataset"] == "cifar10" and s.get("teacher_robustbench") is None and cell["table"] != "table5")
    cfg: dict[str, Any] = {"model": _model_name(s["student"], gowal), "dataset": s["dataset"],
                           "data_fraction": s.get("data_fraction", 1.0), **METHOD_CONFIG[method]}
    if s["dataset"] == "imagenet":
        replays = 4 if method == "free_at" else 1  # Free-AT's ImageNet setting
        cfg.update(preset="imagenet", epochs=IMAGENET_EPOCHS // replays, batch_size=2048, lr=0.8, weight_decay=5e-5,
                   nesterov=False, warmup_epochs=5.0 / replays, warmup_start_lr=0.16, mixup_alpha=0.2)
        if method == "free_at":
            cfg["free_replays"] = replays
    else:
        cfg.setdefault("epochs", CIFAR_EPOCHS)
    if s.get("train_eps") not in (None, "0", 0):  # Table 2: adversarial training at the test radius
        from mixacm.config import parse_eps
        cfg["eps"] = s["train_eps"]
        cfg["attack_step"] = parse_eps("eps", s["train_eps"]) / 4  # PGD step eps/4 (Free/Fast-AT use their own)
    blocked = None
    if cfg["method"] in ("kd", "mixacm"):
        cfg["teacher"], blocked = _teacher(s)
        if s.get("teacher_dataset") not in (None, s["dataset"]):
            cfg["teacher_num_classes"] = 1000 if s["teacher_dataset"].startswith("imagenet") else None
    comp = s.get("components")
    if comp:
        cfg.update(use_acm=comp["acm"], use_kd=comp["kd"], use_mixup=comp["mixup"])
        if not comp["acm"]:
            cfg["method"] = "kd"  # "Only KD": soft labels on clean inputs, no ACM, no mixup
            for k in ("use_acm", "use_kd", "use_mixup"):
                cfg.pop(k)
    if s.get("alpha_kld") == 0.0:
        cfg["use_kd"] = False  # across datasets the KD term is omitted (Sec. 5.3)
    if s.get("blocks"):
        cfg["blocks"] = list(s["blocks"])
    if s.get("transform"):
        cfg["transform"] = s["transform"]
    if s.get("feature_loss") == "direct_l2":
        cfg["feature_loss"] = "direct"
        cfg["alpha_acm"] = DIRECT_L2_ALPHA
    return cfg, blocked


def group_key(train: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(train, sort_keys=True).encode()).hexdigest()[:12]


def spec_for(cell: dict[str, Any]) -> dict[str, Any]:
    base = {"id": paper_data.cell_id(cell), "table": cell["table"], "row": cell["row"], "column": cell["column"],
            "metric": cell["metric"], "erratum": ERRATA.get(paper_data.cell_id(cell)), "blocked": None}
    if cell["metric"] == "size_ratio":
        return {**base, "kind": "param_ratio", "train": None, "eval": None, "seeds": [],
                "student": cell["setting"]["student"], "teacher": cell["setting"]["teacher"], "group": None,
                "tolerance": compare.tolerance_for(cell), "tolerance_rule": "printed precision"}
    if cell["missing"]:
        return {**base, "kind": "train_eval", "train": None, "eval": None, "seeds": [], "group": None,
                "tolerance": compare.tolerance_for(cell), "tolerance_rule": compare.RULE,
                "blocked": "the paper has no value for this cell ('-')"}
    train, blocked = train_config(cell)
    s = cell["setting"]
    ev = None
    if train is not None:
        ev = {"attacks": _row_attacks(cell), "attack": s["attack"], "eps": s.get("eps") or "8/255", "n": None}
    return {**base, "kind": "train_eval", "train": train, "eval": ev, "blocked": blocked,
            "seeds": SEEDS_PAPER_REPEATS if cell.get("n_runs") == 5 else [0],
            "group": group_key(train) if train else None,
            "tolerance": compare.tolerance_for(cell), "tolerance_rule": compare.RULE}


def all_specs() -> list[dict[str, Any]]:
    return [spec_for(c) for c in paper_data.all_cells()]


def runnable_summary() -> dict[str, int]:
    """table -> number of cells the gpu tier would run (not blocked)."""
    out: dict[str, int] = {}
    for s in all_specs():
        if not s["blocked"]:
            out[s["table"]] = out.get(s["table"], 0) + 1
    return out
