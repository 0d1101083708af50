"""Experiment plans of the smoke and cpu tiers: which runs, which paper cells they fill, at what scale.

The paper's settings (Sec. 6, Supp. A.1) are the trainer's defaults; a plan states only what it scales down, and
says so in ``Plan.scale`` (copied into every record). Cells reuse the paper's (table, row, column) so the claims
(``verification/claims.py``) and the report put our numbers beside the paper's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from mixacm.paths import resolve_cifar10_jpeg_root

from . import schema
from .runner import CellSpec, Plan, RunSpec

def cifar_jpeg_root(option: str | None = None) -> Path | None:
    """The CIFAR-10 JPEG copy as ``mixacm.paths.resolve_cifar10_jpeg_root`` finds it (--data-dir, else
    $MIXACM_CIFAR10_JPEG, else ../shared/data/cifar10-jpeg beside the checkout), None where it finds none."""
    try:
        return resolve_cifar10_jpeg_root(option)
    except FileNotFoundError:
        return None


FIG3_FRACTIONS = (0.1, 0.3)  # Fig. 3: MixACM on these fractions of the plan's full training data
# also evaluated with AutoAttack (with the plan's PGD-7 AT run): KD-only students are trained at temperature 10, the
# classic gradient-masking case, so their PGD number is checked by a gradient-free part too
AUTOATTACK_RUNS = ("mixacm", "only_kd")


def _ablation_runs(student: str, teacher_key: str, attacks: tuple[str, ...], extra: bool, epochs: int,
                   full_fraction: float = 1.0, affine: bool = True) -> list[RunSpec]:
    """The students of Table 6 (components), Table 3 (natural, RKD, w/o mixup) and, with ``extra``, Tables 7/8/9,
    Fig. 3 and Fig. 7. ``student`` is the student architecture; the teacher run is ``teacher_key``;
    ``full_fraction`` is the plan's "full data" (Fig. 3's fractions are relative to it). Fig. 3's runs train for
    ``epochs / fraction`` epochs: the optimiser steps of a full-data run at ``epochs``, so that the claim compares
    fewer images, not fewer steps."""
    t = teacher_key
    runs = [
        RunSpec("mixacm", {"method": "mixacm", "model": student}, t, attacks=attacks),  # Std. Setting
        RunSpec("wo_kd", {"method": "mixacm", "model": student, "use_kd": False}, t),
        RunSpec("wo_mixup", {"method": "mixacm", "model": student, "use_mixup": False}, t),
        RunSpec("only_acm", {"method": "mixacm", "model": student, "use_kd": False, "use_mixup": False}, t),
        RunSpec("only_kd", {"method": "kd", "model": student}, t),  # = RKD of Tables 1/3
        RunSpec("natural", {"method": "natural", "model": student}),
    ]
    if extra:
        runs += [
            RunSpec(f"blocks_{b}", {"method": "mixacm", "model": student, "blocks": [b]}, t) for b in (2, 3, 4)
        ] + [
            # direct feature MSE is unbounded: at alpha_acm=5000 it diverges in the first epoch (measured), so it runs
            # at weight 1 (the paper gives no weight for "Full"; Supp. A.4.3 says "similar settings")
            RunSpec("direct_l2", {"method": "mixacm", "model": student, "feature_loss": "direct", "alpha_acm": 1.0}, t),
            RunSpec("teacher_avgpool", {"method": "mixacm", "model": student, "transform": "teacher_avgpool"}, t),
            RunSpec("student_maxpool", {"method": "mixacm", "model": student, "transform": "student_maxpool"}, t),
        ] + ([
            # the learned maps Sec. 5.2 compares adaptive pooling with ("we use adaptive pooling as a default")
            RunSpec("teacher_affine", {"method": "mixacm", "model": student, "transform": "teacher_affine"}, t),
            RunSpec("student_affine", {"method": "mixacm", "model": student, "transform": "student_affine"}, t),
        ] if affine else []) + [
            RunSpec(f"mixacm_frac{round(100 * f)}", {"method": "mixacm", "model": student, "epochs": round(epochs / f),
                                                     "data_fraction": round(f * full_fraction, 6)}, t)
            for f in FIG3_FRACTIONS
        ] + [
            RunSpec(f"only_acm_a{a}", {"method": "mixacm", "model": student, "use_kd": False, "use_mixup": False,
                                       "alpha_acm": float(a)}, t) for a in (500, 50000)
        ]
    return runs


def _cells(robust: str, extra: bool, at_key: str | None, autoattack: bool) -> list[CellSpec]:
    """Map runs to paper cells; ``robust`` is the attack that stands in for the paper's robust column."""
    c: list[CellSpec] = []
    for key, col in [("mixacm", "Std. Setting"), ("wo_kd", "w/o KD"), ("wo_mixup", "w/o Mixup"),
                     ("only_acm", "Only ACM"), ("only_kd", "Only KD")]:
        c += [CellSpec("table6", "Accuracy", col, key, "clean"), CellSpec("table6", "Robustness", col, key, robust)]
    t3 = [("natural", "CIFAR-10 / Natural"), ("only_kd", "CIFAR-10 / RKD"), ("wo_mixup", "CIFAR-10 / Ours w/o mixup"),
          ("mixacm", "CIFAR-10 / Ours")] + ([(at_key, "CIFAR-10 / PGD7-AT")] if at_key else [])
    for key, row in t3:
        c += [CellSpec("table3", row, "Acc.", key, "clean"), CellSpec("table3", row, "PGD 20", key, "pgd20")]
        if autoattack and key in AUTOATTACK_RUNS + (at_key,):
            c.append(CellSpec("table3", row, "AutoAttack", key, "autoattack"))
    if extra:
        for key, row in [("blocks_2", "Low-Level (2)"), ("blocks_3", "Mid-Level (3)"), ("blocks_4", "High-Level (4)"),
                         ("mixacm", "All Features")]:
            c += [CellSpec("table7", row, "Accuracy", key, "clean"), CellSpec("table7", row, "Robustness", key, robust)]
        for key, row in [("direct_l2", "CIFAR-10: Full WRN-28-10 -> WRN-28-5"),
                         ("mixacm", "CIFAR-10: MixACM WRN-28-10 -> WRN-28-5")]:
            c += [CellSpec("table8", row, "Accuracy", key, "clean"), CellSpec("table8", row, "Robustness", key, robust)]
        for key, row in [("mixacm", "teacher Adaptive Max Pool / student None"),
                         ("teacher_avgpool", "teacher Adaptive Avg Pool / student None"),
                         ("student_maxpool", "teacher None / student Adaptive Max Pool"),
                         ("teacher_affine", "teacher Affine / student None"),
                         ("student_affine", "teacher None / student Affine")]:
            c += [CellSpec("table9", row, "Accuracy", key, "clean"), CellSpec("table9", row, "Robustness", key, robust)]
        for key, f in [(f"mixacm_frac{round(100 * f)}", f) for f in FIG3_FRACTIONS] + [("mixacm", 1.0)]:
            # data_fraction here is relative to the plan's full training data
            c += [CellSpec("fig3", "mixacm", "clean", key, "clean", {"data_fraction": f}),
                  CellSpec("fig3", "mixacm", "robust", key, robust, {"data_fraction": f})]
        if at_key:
            c += [CellSpec("fig3", "pgd7_at", "clean", at_key, "clean", {"data_fraction": 1.0}),
                  CellSpec("fig3", "pgd7_at", "robust", at_key, robust, {"data_fraction": 1.0})]
        for key, a in [("only_acm_a500", 500), ("only_acm", 5000), ("only_acm_a50000", 50000)]:
            c += [CellSpec("fig7", f"alpha_acm={a}", "clean", key, "clean", {"alpha_acm": a}),
                  CellSpec("fig7", f"alpha_acm={a}", "robust", key, robust, {"alpha_acm": a})]
    bench = [("natural", "natural"), ("mixacm", "mixacm")] + ([(at_key, "pgd7_at")] if at_key else [])
    c += [CellSpec("bench", row, "step_time_s", key, "step_time_s") for key, row in bench]
    return c


# ------------------------------------------------------------------------------------------------ smoke tier
DIGITS_BASE = {  # scikit-learn's 8x8 digits: the embedded default (configs/digits/*.toml use the same settings)
    "dataset": "digits", "augment": "none", "batch_size": 64, "lr": 0.05, "val_fraction": 0.15,
    "eps": 0.1, "attack_step": 0.025, "select_metric": "last", "progress": False, "val_n": 200,
    "teacher_gate_tolerance": 0.2,
}


# (run key, Table 1 row, trainer overrides): the compared methods at digits scale (attacks of 5 steps)
DIGITS_COMPARED = [
    ("trades", "TRADES (Zhang et al. [94])", {"method": "trades", "attack_steps": 5}),
    ("mart", "MART (Wang et al. [78])", {"method": "mart", "attack_steps": 5}),
    ("awp", "AWP (Wu et al. [81])", {"method": "awp", "attack_steps": 5, "awp_warmup_epochs": 1}),
    ("fat", "FAT (Zhang et al. [96])", {"method": "fat", "attack_steps": 5}),
    ("free_at", "Free AT (Shafahi et al. [66])", {"method": "free_at", "free_replays": 4}),
]


def _select(runs: list[RunSpec], cells: list[CellSpec], only: tuple[str, ...] | None):
    """A plan's ``only``: the named runs and their teachers, and the cells they feed; an unknown key stops at once."""
    if only is None:
        return runs, cells
    unknown = sorted(set(only) - {r.key for r in runs})
    if unknown:
        raise ValueError(f"only: unknown runs {unknown}; valid: {', '.join(r.key for r in runs)}")
    keep = set(only) | {r.teacher for r in runs if r.key in only and r.teacher}
    return [r for r in runs if r.key in keep], [c for c in cells if c.run in keep]


def digits_plan(epochs: int = 6, seeds: tuple[int, ...] = (0, 1), extra: bool = False,
                alpha_acm_reference: str | None = "wrn-34-10") -> Plan:
    """The embedded default: a Fast-AT WRN-10-2 teacher, WRN-10-1 students. eps = 0.1 on [0,1] pixels
    (8/255 means nothing on 8x8 near-binary digits; an assumption of this default, not a paper setting).
    alpha_acm = 5000 (Sec. 6) is stated at the paper's student widths, WRN-34-10 (``alpha_acm_reference``; None:
    literally on WRN-10-1's channel means, where the ACM term outweighs the others ~1,000x and the run warns)."""
    runs = [RunSpec("teacher", {"method": "fast_at", "model": "wrn-10-2", "epochs": epochs + 4}, seeded=False)]
    # no affine transforms on digits: the freshly initialised teacher-side map makes the ACM term dwarf the others
    # in the first epoch (warned on both seeds), and the main job prints no warning; the cpu tier runs them
    runs += _ablation_runs("wrn-10-1", "teacher", ("fgsm", "pgd20"), extra, epochs, affine=False)
    runs.append(RunSpec("pgd_at", {"method": "pgd_at", "model": "wrn-10-1"}))
    cells = _cells("pgd20", extra, "pgd_at", autoattack=False)
    if extra:  # the compared methods of Table 1, each in seconds on digits (their attacks at the digits eps)
        for key, row, over in DIGITS_COMPARED:
            if "free_replays" in over:  # Free-AT: epochs divided by its replays
                over = {**over, "epochs": max(1, epochs // over["free_replays"])}
            runs.append(RunSpec(key, {"model": "wrn-10-1", **over}, attacks=("fgsm", "pgd20", "pgd100")))
            cells += [CellSpec("table1", row, "Clean Acc.", key, "clean"),
                      CellSpec("table1", row, "PGD 100", key, "pgd100")]
    scale = f"digits 8x8, WRN-10-2 Fast-AT teacher -> WRN-10-1, {epochs} epochs, eps 0.1, PGD-20 on 300"
    if alpha_acm_reference is not None:
        runs = _alpha_at(runs, alpha_acm_reference)
        scale += f"; alpha_acm stated at {alpha_acm_reference} block widths"
    return Plan(name="digits", tier="smoke", base={**DIGITS_BASE, "epochs": epochs}, runs=runs, cells=cells,
                seeds=seeds, eval_n=300, eval_eps=0.1, scale=scale,
                acm_profiles={"teacher": "teacher", "student": "mixacm", "natural": "natural"}, acm_n=200)


def digits_compared_plan(epochs: int = 6, seeds: tuple[int, ...] = (0, 1), only: tuple[str, ...] | None = None,
                         eval_n: int | None = None) -> Plan:
    """Every Table 1 method the trainer implements, side by side on the embedded digits default: the digits teacher
    and students of ``digits_plan`` (natural, PGD-AT, RKD, ARD, MixACM at the paper's widths) plus the compared
    methods of ``DIGITS_COMPARED``, each evaluated by FGSM, PGD-20 and PGD-100 on the whole digits test split with
    per-image masks. ``only``: these run keys (and the teacher); ``eval_n``: a seeded test subset (tests)."""
    base = digits_plan(epochs=epochs, seeds=seeds, extra=True)
    keep = {"teacher", "natural", "pgd_at", "only_kd", "mixacm", *(k for k, _, _ in DIGITS_COMPARED)}
    attacks = ("fgsm", "pgd20", "pgd100")
    runs = [RunSpec(r.key, r.overrides, r.teacher, r.seeded, attacks if r.seeded else r.attacks, r.seeds)
            for r in base.runs if r.key in keep]
    runs.insert(4, RunSpec("ard", {"method": "ard", "model": "wrn-10-1", "attack_steps": 5}, "teacher", attacks=attacks))
    rows = {"natural": "Natural", "pgd_at": "AT (Madry et al. [49])", "only_kd": "RKD (Goldblum et al. [26])",
            "ard": "ARD (Goldblum et al. [26], adversarial)", "mixacm": "Ours (w/ Mixup)",
            **{k: row for k, row, _ in DIGITS_COMPARED}}
    cells = [CellSpec("table1", rows[r.key], col, r.key, metric)
             for r in runs if r.seeded for col, metric in (("Clean Acc.", "clean"), ("PGD 20", "pgd20"),
                                                            ("PGD 100", "pgd100"))]
    cells += [CellSpec("teacher", "Fast-AT teacher (WRN-10-2)", col, "teacher", metric)
              for col, metric in (("Clean Acc.", "clean"), ("PGD 20", "pgd20"))]
    runs, cells = _select(runs, cells, only)
    return Plan(name="digits-compared", tier="smoke", base=base.base, runs=runs, cells=cells, seeds=seeds,
                eval_n=eval_n, eval_eps=base.eval_eps,
                scale=f"digits 8x8, WRN-10-2 Fast-AT teacher -> WRN-10-1, {epochs} epochs, eps 0.1, training "
                      f"attacks of 5 steps (PGD-AT: 7), FGSM/PGD-20/PGD-100 on the whole test split; alpha_acm stated at "
                      f"wrn-34-10 block widths")


def cifar_slice_plan(data_root: str | Path, fraction: float = 0.01, epochs: int = 1) -> Plan:
    """Smoke: the whole pipeline on a small stratified slice of the real CIFAR-10 JPEG copy (machinery only)."""
    base = {"dataset": "cifar10-jpeg", "data_fraction": fraction, "epochs": epochs, "batch_size": 32,
            "val_fraction": 0.1, "select_metric": "last", "progress": False, "val_n": 50,
            "teacher_expected_acc": 0.1, "teacher_gate_tolerance": 0.1}
    runs = [RunSpec("teacher", {"method": "fast_at", "model": "wrn-10-1"}, seeded=False),
            RunSpec("mixacm", {"method": "mixacm", "model": "wrn-10-1"}, "teacher"),
            RunSpec("natural", {"method": "natural", "model": "wrn-10-1"})]
    cells = [CellSpec("table3", "CIFAR-10 / Ours", "Acc.", "mixacm", "clean"),
             CellSpec("table3", "CIFAR-10 / Ours", "PGD 20", "mixacm", "pgd20"),
             CellSpec("table3", "CIFAR-10 / Natural", "Acc.", "natural", "clean")]
    return Plan(name="cifar-slice", tier="smoke", base=base, runs=runs, cells=cells, seeds=(0,), eval_n=40,
                scale=f"CIFAR-10 JPEG {fraction:.0%} slice, WRN-10-1, {epochs} epoch(s): machinery check only",
                data_root=str(data_root))


# -------------------------------------------------------------------------------------------------- cpu tier
def cpu_plan(data_root: str | Path, *, fraction: float = 0.2, epochs: int = 3, teacher_fraction: float = 0.3,
             teacher_epochs: int = 4, seeds: tuple[int, ...] = (0, 1), extra: bool = True, autoattack_n: int = 500,
             eval_n: int | None = None, autoattack_seeds: int = 1, alpha_acm_reference: str | None = None,
             table10: tuple[str, ...] = (), only: tuple[str, ...] | None = None) -> Plan:
    """The CPU-scale reproduction on real CIFAR-10 (JPEG copy), sized for 2 cores.

    Teacher: Fast-AT (FGSM + random start, Wong et al. 2020) WRN-16-2, chosen over PGD-7 AT because it is ~4x
    cheaper for similar robustness. Students: WRN-16-1 (channel counts differ from the teacher's, so the default
    teacher-side adaptive max pool is exercised), every claim-bearing ablation, a PGD-7 AT baseline on the same
    student, and the two open implementation choices run side by side: ACM reduction "sum" (one seed) vs the default
    "mean" over channels, and block features after ("post") vs before ("pre", default) the next BN+ReLU.
    Robust columns use PGD-20 (eps 8/255, step 2/255), with FGSM beside it for the gradient-masking self-check, on the
    whole test split (``eval_n`` None; paired comparisons need the same images and gain from all of them) or a seeded
    subset; AutoAttack (standard) on a seeded subset of ``autoattack_n`` images for MixACM, Only-KD and PGD-7 AT, first
    ``autoattack_seeds`` seeds (~30 min per seed on 2 cores at 500).
    Runs are resumable, so ``extra=False`` then ``extra=True`` adds the rest.

    ``alpha_acm_reference`` (e.g. "wrn-34-10"): every channel-mean ACM run states alpha_acm at that architecture's
    block widths (``TrainConfig.alpha_acm_reference``), so 5000 weighs WRN-16-1's blocks as it weighs the paper's
    student's; the alpha sweep is then in paper-equivalent units. ``table10`` (e.g. ("wrn-10-1",)): Table 10 at this
    scale -- each named WRN student trained with MixACM (run "mixacm_<arch>") and with PGD-7 AT ("pgd_at_<arch>")
    against the plan's own teacher, beside the plan's WRN-16-1 pair (runs "mixacm", "pgd_at"); rows
    "WRN-16-2 -> <student>" with the exact "Size Ratio" (parameter counts) as records computed without training.
    ``only``: the named runs (and their teacher)."""
    base = {"dataset": "cifar10-jpeg", "data_fraction": fraction, "epochs": epochs, "select_metric": "last",
            "val_fraction": 0.02, "val_n": 200, "progress": False, "teacher_gate_tolerance": 0.15}
    runs = [RunSpec("teacher", {"method": "fast_at", "model": "wrn-16-2", "epochs": teacher_epochs,
                                "data_fraction": teacher_fraction}, seeded=False)]
    runs += _ablation_runs("wrn-16-1", "teacher", ("fgsm", "pgd20"), extra, epochs, full_fraction=fraction)
    runs += [RunSpec("pgd_at", {"method": "pgd_at", "model": "wrn-16-1"}),
             # the open implementation choices (sum: one seed, CPU budget; it sits at chance)
             RunSpec("mixacm_sum", {"method": "mixacm", "model": "wrn-16-1", "acm_reduction": "sum"}, "teacher",
                     seeded=False),
             # post showed +9 pp clean, +3.6 pp PGD-20 over pre on seed 0: two seeds to settle the default
             RunSpec("mixacm_post", {"method": "mixacm", "model": "wrn-16-1", "feature_point": "post"}, "teacher")]
    choices = [("mixacm", "reduction=mean, feature_point=pre, alpha_acm=5000 (defaults)"),
               ("mixacm_sum", "reduction=sum"), ("mixacm_post", "feature_point=post")]
    if extra:  # does alpha_acm=5000 starve the classifier in short training? (the ACM term dwarfs the CE term)
        runs.append(RunSpec("mixacm_a500", {"method": "mixacm", "model": "wrn-16-1", "alpha_acm": 500.0}, "teacher"))
        choices.append(("mixacm_a500", "alpha_acm=500"))
    cells = _cells("pgd20", extra, "pgd_at", autoattack=autoattack_n > 0)
    cells += [CellSpec("choices", f"{key}", col, key, metric, {"choice": note}) for key, note in choices
              for col, metric in [("clean", "clean"), ("robust", "pgd20")]]
    t10_runs, t10_cells, ratios = _table10("wrn-16-2", "teacher", "wrn-16-1", table10)
    runs += t10_runs
    cells += t10_cells
    scale = (f"CIFAR-10 JPEG q75; WRN-16-2 Fast-AT teacher ({teacher_fraction:.0%} of train, {teacher_epochs} ep) -> "
             f"WRN-16-1 students ({fraction:.0%} of train, {epochs} ep); eps 8/255; FGSM and PGD-20 on "
             f"{eval_n or 'all 10,000'} test images")
    name = "cpu-cifar10"
    if alpha_acm_reference is not None:
        runs = _alpha_at(runs, alpha_acm_reference)
        name += "-alpha-at-" + alpha_acm_reference
        scale += f"; alpha_acm stated at {alpha_acm_reference} block widths"
    if only is not None:
        runs, cells = _select(runs, cells, only)
        ratios = [r for r in ratios if any(c.table == "table10" and c.row == r["row"] for c in cells)]
    profiles = {"teacher": "teacher", "student": "mixacm", "natural": "natural"}
    keys = {r.key for r in runs}
    return Plan(name=name, tier="cpu", base=base, runs=runs, cells=cells, seeds=seeds, eval_n=eval_n, scale=scale,
                acm_profiles=profiles if set(profiles.values()) <= keys else {}, acm_n=500,
                data_root=str(data_root), autoattack_runs=tuple(k for k in AUTOATTACK_RUNS + ("pgd_at",) if k in keys)
                if autoattack_n > 0 else (), autoattack_n=autoattack_n, autoattack_seeds=autoattack_seeds,
                extra_records=ratios)


def _table10(teacher: str, teacher_key: str, own: str, students: tuple[str, ...]
             ) -> tuple[list[RunSpec], list[CellSpec], list[dict[str, Any]]]:
    """Table 10 at a plan's scale: MixACM and PGD-7 AT per student against the plan's teacher (the plan's own student
    ``own`` reuses its runs "mixacm" / "pgd_at"), and each row's exact size ratio as a record (no training)."""
    if not students:
        return [], [], []
    from mixacm.models import wrn_depth_width

    for s in students:
        if wrn_depth_width(s) is None:
            raise ValueError(f"table10: {s!r} is not a WRN (wrn-<depth>-<width>)")
    runs: list[RunSpec] = []
    cells: list[CellSpec] = []
    ratios: list[dict[str, Any]] = []
    for s in dict.fromkeys((own,) + tuple(students)):
        ours, at = ("mixacm", "pgd_at") if s == own else (f"mixacm_{s}", f"pgd_at_{s}")
        if s != own:
            runs += [RunSpec(ours, {"method": "mixacm", "model": s}, teacher_key),
                     RunSpec(at, {"method": "pgd_at", "model": s})]
        row = f"{teacher.upper()} -> {s.upper()}"
        cells += [CellSpec("table10", row, f"{who} / {col}", key, metric)
                  for who, key in (("Ours", ours), ("PGD7-AT", at)) for col, metric in (("Acc.", "clean"),
                                                                                        ("Rob.", "pgd20"))]
        ratios.append(schema.make_record("table10", row, "Size Ratio", {"teacher": teacher, "student": s},
                                         [param_ratio({"student": s, "teacher": teacher})], [0],
                                         {"kind": "param_ratio"}))
    return runs, cells, ratios


def _channel_mean_acm(over: dict[str, Any]) -> bool:
    """A run whose feature loss is the channel-mean ACM distance (the one alpha_acm_reference applies to)."""
    return (over.get("method") == "mixacm" and over.get("feature_loss", "acm") == "acm"
            and over.get("acm_reduction", "mean") == "mean" and over.get("use_acm", True))


def _alpha_at(runs: list[RunSpec], reference: str) -> list[RunSpec]:
    """Every channel-mean ACM run states alpha_acm at ``reference``'s block widths (TrainConfig.alpha_acm_reference);
    other runs (no ACM term, direct L2, ACM summed over channels) as they are."""
    return [RunSpec(r.key, {**r.overrides, "alpha_acm_reference": reference}, r.teacher, r.seeded, r.attacks, r.seeds)
            if _channel_mean_acm(r.overrides) else r for r in runs]


# -------------------------------------------------------------------------------------------------- gpu tier
GPU_BASE = {"progress": False, "deterministic": False}  # cudnn autotuning on: determinism is opt-in on a GPU
IMAGENET_EVAL_N = 5000  # ImageNet val subset (RobustBench's ImageNet protocol); the paper does not say its size


def gpu_run_key(spec: dict[str, Any]) -> str:
    t = spec["train"]
    return f"{t['method']}-{t['model']}-{t['dataset']}-{spec['group'][:8]}"


def param_ratio(spec: dict[str, Any]) -> float:
    """Tables 4/10 "Size Ratio": trainable parameters of the student over the teacher's, in percent (built on the
    meta device: no weights are allocated)."""
    import torch

    from mixacm.models import build_model, count_parameters, wrn_depth_width

    def count(arch: str) -> int:
        d, w = wrn_depth_width(arch)
        with torch.device("meta"):
            return count_parameters(build_model(f"wrn-{d}-{w}"))
    return 100.0 * count(spec["student"]) / count(spec["teacher"])


def gpu_plan(selected: list[dict[str, Any]], *, rehearsal: dict[str, Any] | None = None,
             teacher_cache: str | Path | None = None) -> Plan:
    """The paper-scale plan of the given gpu specs (``verification.specs``): one run per training group, shared by
    every cell (of any table) that names the same training config; each run evaluated with the union of its cells'
    attacks at each radius its cells use. ``rehearsal`` (``verification.rehearsal.amounts()``) scales amounts only:
    steps, batch, test images, attack iterations, seeds. ``teacher_cache``: one directory where every run's teacher
    is downloaded (or trained) once."""
    from . import paper_data

    r = rehearsal or {}
    runs: dict[str, RunSpec] = {}
    cells: list[CellSpec] = []
    extra: list[dict[str, Any]] = []
    for spec in selected:
        if spec["blocked"]:
            raise ValueError(f"{spec['id']} cannot run: {spec['blocked']}")
        cell = paper_data.find_cell(spec["table"], spec["row"], spec["column"])
        if spec["kind"] == "param_ratio":
            setting = {k: cell["setting"].get(k) for k in schema.SETTING_KEYS}
            extra.append(schema.make_record(cell["table"], cell["row"], cell["column"], setting,
                                            [param_ratio(spec)], [0], {"kind": "param_ratio"}, 0.0))
            continue
        key = gpu_run_key(spec)
        seeds = tuple(spec["seeds"][:r["seeds"]] if "seeds" in r else spec["seeds"])
        attacks = tuple(spec["eval"]["attacks"])
        if key in runs:  # same training config in another table: one run, the union of attacks and seeds
            old = runs[key]
            attacks = old.attacks + tuple(a for a in attacks if a not in old.attacks)
            seeds = tuple(sorted(set(old.seeds or ()) | set(seeds)))
        overrides = {**spec["train"], **r.get("train", {})}
        if "max_replays" in r and overrides.get("free_replays", 1) > r["max_replays"]:
            overrides["free_replays"] = r["max_replays"]
        runs[key] = RunSpec(key, overrides, attacks=attacks, seeds=seeds)
        metric = "clean" if spec["eval"]["attack"] == "clean" else spec["eval"]["attack"]
        from mixacm.attacks import parse_eps
        cells.append(CellSpec(cell["table"], cell["row"], cell["column"], key, metric,
                              dict(cell["setting"]), eps=parse_eps(spec["eval"]["eps"])))
    scale = ("paper settings (Sec. 6, Supp. A.1); ImageNet evaluated on a seeded subset of "
             f"{IMAGENET_EVAL_N} val images" if not r else r["scale"])
    base = {**GPU_BASE, **({"teacher_cache": str(teacher_cache)} if teacher_cache else {})}
    return Plan(name="gpu-rehearsal" if r else "gpu", tier="gpu", base=base,
                runs=list(runs.values()), cells=cells, seeds=(0,), eval_n=r.get("eval_n"), eval_eps=8 / 255,
                scale=scale, eval_max_iterations=r.get("max_iterations"), keep_checkpoints=r.get("keep_checkpoints", True),
                extra_records=extra, streamed_eval_n=r.get("eval_n") or IMAGENET_EVAL_N)


# ---------------------------------------------------------------------------------------- epoch-scaling study
SCALING_EPOCHS = (3, 6, 12, 24)
SCALING_ATTACKS = ("fgsm", "pgd20")  # FGSM: cheap, and it lets the gradient-masking self-check run on every model


def epoch_scaling_plan(data_root: str | Path, *, epochs: tuple[int, ...] = SCALING_EPOCHS,
                       mixacm_seeds: tuple[int, ...] = (0, 1, 2), at_seeds: tuple[int, ...] = (0, 1),
                       fraction: float = 0.2, teacher_fraction: float = 0.3, teacher_epochs: int = 4,
                       eval_n: int | None = None, fig3_fraction: float = 0.3,
                       alpha_acm_reference: str | None = "wrn-34-10", only: tuple[str, ...] | None = None,
                       base_overrides: dict[str, Any] | None = None) -> Plan:
    """Does MixACM close its robustness gap to PGD-7 AT as training grows? The cpu tier's teacher (Fast-AT WRN-16-2)
    and WRN-16-1 students; MixACM (alpha_acm at the paper's student widths) and PGD-7 AT each trained from scratch
    with its own cosine schedule at every epoch count of ``epochs``; every model evaluated (clean, FGSM, PGD-20) on
    the whole test split (``eval_n`` None), so that conditions are decided paired on the same images. Also Fig. 3 at
    equal optimiser steps: MixACM on ``fig3_fraction`` of the data for ``epochs[0] / fig3_fraction`` epochs, the
    steps of PGD-7 AT's full-data run at ``epochs[0]`` epochs.

    Cells: table "epochs", rows "mixacm" / "pgd_at" / "teacher", columns "clean" / "robust", ``setting.epochs``;
    table "fig3" as in the cpu tier, with ``setting.epochs`` on both sides. The optimiser's settings are stated
    in ``base`` (not left to the trainer's defaults), so a resumed run trains exactly as it began.
    ``base_overrides``: trainer settings for every run (toy-size checks of the plan's machinery)."""
    base = {"dataset": "cifar10-jpeg", "data_fraction": fraction, "epochs": epochs[0], "select_metric": "last",
            "val_fraction": 0.02, "val_n": 200, "progress": False, "teacher_gate_tolerance": 0.15,
            "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "schedule": "cosine",
            "batch_size": 128, "attack_steps": 7, "attack_step": 2 / 255, "eps": 8 / 255, **(base_overrides or {})}
    runs = [RunSpec("teacher", {"method": "fast_at", "model": "wrn-16-2", "epochs": teacher_epochs,
                                "data_fraction": teacher_fraction}, seeded=False, attacks=SCALING_ATTACKS)]
    cells = [CellSpec("epochs", "teacher", col, "teacher", metric, {"epochs": teacher_epochs})
             for col, metric in (("clean", "clean"), ("robust", "pgd20"))]
    for e in epochs:
        for key, over, seeds in ((f"mixacm_e{e}", {"method": "mixacm"}, mixacm_seeds),
                                 (f"pgd_at_e{e}", {"method": "pgd_at"}, at_seeds)):
            runs.append(RunSpec(key, {**over, "model": "wrn-16-1", "epochs": e},
                                "teacher" if over["method"] == "mixacm" else None, attacks=SCALING_ATTACKS,
                                seeds=seeds))
            cells += [CellSpec("epochs", over["method"], col, key, metric, {"epochs": e})
                      for col, metric in (("clean", "clean"), ("robust", "pgd20"))]
    fig3_epochs = round(epochs[0] / fig3_fraction)
    frac_key = f"mixacm_frac{round(100 * fig3_fraction)}_e{fig3_epochs}"
    runs.insert(3, RunSpec(frac_key, {"method": "mixacm", "model": "wrn-16-1", "epochs": fig3_epochs,
                                      "data_fraction": round(fig3_fraction * fraction, 6)}, "teacher",
                           attacks=SCALING_ATTACKS, seeds=mixacm_seeds))  # after the first pair: early evidence
    for row, key, f, e in (("mixacm", frac_key, fig3_fraction, fig3_epochs), ("pgd7_at", f"pgd_at_e{epochs[0]}", 1.0,
                                                                               epochs[0])):
        cells += [CellSpec("fig3", row, col, key, metric, {"data_fraction": f, "epochs": e})
                  for col, metric in (("clean", "clean"), ("robust", "pgd20"))]
    if alpha_acm_reference is not None:
        runs = _alpha_at(runs, alpha_acm_reference)
    runs, cells = _select(runs, cells, only)
    scale = (f"CIFAR-10 JPEG q75; WRN-16-2 Fast-AT teacher ({teacher_fraction:.0%} of train, {teacher_epochs} ep) -> "
             f"WRN-16-1 students ({fraction:.0%} of train) at {', '.join(map(str, epochs))} epochs; eps 8/255; "
             f"FGSM and PGD-20 on {eval_n or 'all 10,000'} test images"
             + (f"; alpha_acm stated at {alpha_acm_reference} block widths" if alpha_acm_reference else ""))
    return Plan(name="cpu-epoch-scaling", tier="cpu", base=base, runs=runs, cells=cells, seeds=mixacm_seeds,
                eval_n=eval_n, scale=scale, data_root=str(data_root))
