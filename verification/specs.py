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
# ``configs/table*/`` (the paper does not say; one rule for the specs and the configs, tested in
# verification/test_gpu_tier.py).
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
    # the compared methods (mixacm.baselines), each with its own code's CIFAR-10 attack (sources: TABLE1_RECIPES)
    "trades": {"method": "trades", "attack_steps": 10, "attack_step": 0.007, "eps": 0.031, **ROBUST},
    "mart": {"method": "mart", "attack_steps": 10, "attack_step": 0.007, "eps": 0.031, **ROBUST},
    "awp": {"method": "awp", "awp_base": "trades", "attack_steps": 10, "attack_step": "2/255", "eps": "8/255",
            **ROBUST},
    "fat": {"method": "fat", "attack_steps": 10, "attack_step": 0.007, "eps": 0.031, **ROBUST},
    # Free-AT: m replays per minibatch, epochs divided by m (Shafahi et al. 2019: m = 8 on CIFAR, 4 on ImageNet)
    "free_at": {"method": "free_at", "free_replays": 8, "epochs": CIFAR_EPOCHS // 8, **ROBUST},
    # Rice et al. 2020: PGD-10 AT, best checkpoint by held-out PGD accuracy
    "at_early_stop": {"method": "pgd_at", "attack_steps": 10, "attack_step": "2/255", "eps": "8/255", **ROBUST},
    # Pang et al. 2021 (bag of tricks): the TRADES code with other training settings (TABLE1_RECIPES)
    "bot_trades": {"method": "trades", "attack_steps": 10, "attack_step": "2/255", "eps": "8/255", **ROBUST},
}
# Table 1 quotes each compared method from its own paper, so its row trains with that paper's CIFAR-10 recipe: the
# optimiser, schedule, epochs and the attack's details, each value from the official code (file, line) or paper.
# Applied over METHOD_CONFIG for Table 1 cells only (Free-AT's Table 2 row keeps the ImageNet preset). In every code
# the SGD momentum is plain (not Nesterov), lr 0.1, batch 128; "1-based epoch E" is a code's `epoch >= E` test on
# epochs counted from 1, i.e. a milestone after E - 1 of the epochs.
_PLAIN_SGD = {"nesterov": False, "momentum": 0.9, "lr": 0.1, "batch_size": 128}
TABLE1_RECIPES: dict[str, dict[str, Any]] = {
    # Madry et al. 2018, MadryLab/cifar10_challenge: config.json (weight_decay 0.0002, momentum 0.9, step_size_schedule
    # 0.1 / 0.01 at step 40000 / 0.001 at 60000 of max_num_training_steps 80000 at batch 128 = 204.8 passes);
    # train.py L41-62: the attack differentiates the Model(mode='train') graph, whose batch norm (model.py L100-110,
    # is_training, updates_collections=None) uses batch statistics and moves its averages at every attack step.
    # PGD-7 of step 2 (the paper, Sec. 5 / Appendix; config.json's num_steps is 10).
    # model.py _decay: L2 on the variables named 'DW' only, i.e. the conv and fc kernels.
    "pgd_at": {**_PLAIN_SGD, "weight_decay": 2e-4, "weight_decay_on": "conv_fc_weights", "schedule": "piecewise",
               "lr_milestones": [0.5, 0.75], "epochs": 205, "attack_bn": "train"},
    # Zhang et al. 2019, yaodongyu/TRADES train_trades_cifar10.py: epochs 76 (L20), weight decay 2e-4 (L22), eps 0.031,
    # 10 steps of 0.007, beta 6 (L30-37), lr x 0.1 from 1-based epoch 75 (L137-145); eval-mode attack (trades.py L28)
    "trades": {**_PLAIN_SGD, "weight_decay": 2e-4, "epochs": 76, "schedule": "piecewise", "lr_milestones": [74 / 76],
               "trades_beta": 6.0},
    # Wang et al. 2020, YisenWang/MART train_wideresnet.py: epochs 90 (L25), weight decay 7e-4 (L27), eps 0.031,
    # 10 steps of 0.007, beta (lambda) 6 (L35-42), lr x 0.1 from 1-based epoch 75, x 0.01 from 90 (L109-117)
    "mart": {**_PLAIN_SGD, "weight_decay": 7e-4, "epochs": 90, "schedule": "piecewise",
             "lr_milestones": [74 / 90, 89 / 90], "mart_lambda": 6.0},
    # Wu et al. 2020, csdongxian/AWP trades_AWP/train_trades_cifar.py: epochs 200 (L24), weight decay 5e-4 (L31),
    # eps 8, 10 steps of 2 (/255, L41-46), beta 6 (L47), gamma 5e-3 (L60), AWP from 1-based epoch 10 (L62, L179,
    # L294), lr x 0.1 from 1-based epoch 100, x 0.01 from 150 (L260-269)
    "awp": {**_PLAIN_SGD, "weight_decay": 5e-4, "epochs": 200, "schedule": "piecewise",
            "lr_milestones": [99 / 200, 149 / 200], "trades_beta": 6.0, "awp_gamma": 5e-3, "awp_warmup_epochs": 9},
    # Zhang et al. 2020, zjfheart/Friendly-Adversarial-Training FAT_for_TRADES.py (README: --epsilon 0.031): epochs
    # 85 (L14), weight decay 2e-4 (L15), 10 steps of 0.007 (L19-20), beta 6 (L24), dynamic tau on by default (L28):
    # 0 to 1-based epoch 30, 1 to 50, 2 to 70, 3 after (L90-101), lr x 0.1 from 1-based epoch 75 (L103-111)
    "fat": {**_PLAIN_SGD, "weight_decay": 2e-4, "epochs": 85, "schedule": "piecewise", "lr_milestones": [74 / 85],
            "trades_beta": 6.0, "fat_tau": 3, "fat_tau_milestones": [30 / 85, 50 / 85, 70 / 85]},
    # Shafahi et al. 2019, ashafahi/free_adv_train config.py: train_steps 80000 replay steps (L15) of batch 128 (L19)
    # with m = 8 (L23) = 25.6 passes over the data, step_size_schedule 0.1 / 0.01 at 40000 / 0.001 at 60000 (L20),
    # weight decay 2e-4 (L21) on the conv and fc kernels only (free_model.py _decay: the 'DW' variables), momentum 0.9
    # (L22); eps 8 (L28) and an eps step (free_train.py L57)
    "free_at": {**_PLAIN_SGD, "weight_decay": 2e-4, "weight_decay_on": "conv_fc_weights", "epochs": 26,
                "schedule": "piecewise", "lr_milestones": [0.5, 0.75]},
    # Rice et al. 2020, locuslab/robust_overfitting train_cifar.py: epochs 200 (L133), piecewise 0.1 / 0.01 / 0.001 at
    # half and three quarters (L248-255) of epoch + (i + 1) / len(train_batches) for iteration i (the training loop),
    # i.e. one step ahead, weight decay 5e-4 (L230), PGD-10 of 2/255 (L139-142) crafted in train mode
    # (model.train() L294), with the attack's final forward (L120) and the clean forward after the step (L339)
    "at_early_stop": {**_PLAIN_SGD, "weight_decay": 5e-4, "epochs": 200, "schedule": "piecewise",
                      "lr_milestones": [0.5, 0.75], "lr_lead_steps": 1, "attack_bn": "train",
                      "bn_logging_passes": True},
    # Pang et al. 2021, P2333/Bag-of-Tricks-for-AT README: the TRADES code with weight decay 5e-4 and 110 epochs, lr
    # decayed at 100 and 105; in the TRADES framework it runs in (ShawnXYang/AT_HE CIFAR-10/train_adv_cifar10.py
    # L155-163, L179: 1-based `epoch >=`) that is after 99 and 104 epochs; eval-mode attack. The row's model (86.43 /
    # 54.39, WRN-34-20) is the README's eps-8/255 checkpoint, with the baseline setting's PGD-10 of step 2/255
    # (README "Baseline setting": --epsilon 8 --attack-iters 10 --pgd-alpha 2); beta 6, TRADES's CIFAR-10 value
    "bot_trades": {**_PLAIN_SGD, "weight_decay": 5e-4, "epochs": 110, "schedule": "piecewise",
                   "lr_milestones": [99 / 110, 104 / 110], "trades_beta": 6.0},
}
# What the trainer cannot express of these recipes (the rows train with the nearest setting above).
TABLE1_NOT_EXPRESSIBLE: dict[str, str] = {
    "pgd_at": "Madry et al.'s TensorFlow batch norm uses epsilon 1e-3 (PyTorch's: 1e-5) and updates the moving "
              "variance with the biased batch variance; 80,000 steps are 204.8 passes (trained: 205 epochs); its WRN "
              "is the challenge's WRN-34-10 layout",
    "free_at": "the TensorFlow code's batch norm (epsilon 1e-3, biased moving variance) as Madry et al.'s; 80,000 "
               "replay steps are 25.6 passes (trained: 26 epochs); its network is a WRN-32-10 (free_model.py: 5 units "
               "per stage)",
    "trades": "the TRADES code's reported model is chosen by its authors' early stopping on the test set; the row "
              "selects by held-out robust accuracy (the project's rule for robust rows)",
    "mart": "as TRADES: the row selects by held-out robust accuracy",
    "fat": "the FAT code returns the friendly adversarial points reordered (those stopped first come first); the loss "
           "and batch statistics do not depend on the order, so the trainer keeps the batch's order",
    "awp": "the AWP code perturbs a proxy model updated by its own SGD (lr 0.1); only the normalised difference "
           "enters, which is the normalised gradient the trainer uses",
    "bot_trades": "as TRADES",
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
    if cell["table"] == "table1":
        cfg.update(TABLE1_RECIPES.get(method, {}))
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
