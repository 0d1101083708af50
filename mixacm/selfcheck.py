"""Self-checks run on every evaluation: each returns a JSON-able dict {name, status: ok|flag|skipped, detail, ...}.

What they catch: a model left in train mode, probabilities instead of logits, inputs outside [0,1] or a
model that expects normalised inputs, adversarial inputs outside the eps-ball / [0,1] / NaN, PGD getting *weaker* with
more steps, gradient masking (zero input gradients, Square or FGSM beating the iterative white-box attacks; Athalye
et al. 2018, Croce & Hein 2020), and the AutoAttack package's own flags.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

OK, FLAG, SKIPPED = "ok", "flag", "skipped"
EPS_TOL = 1e-6  # allowed l-inf excess over eps (float32 rounding of x + eps)


def _check(name: str, flagged: bool, detail: str, **extra) -> dict:
    return {"name": name, "status": FLAG if flagged else OK, "detail": detail, **extra}


def noise_tolerance(p: float, n: int) -> float:
    """Two binomial standard errors of an accuracy p on n points, at least one point (1/n)."""
    if n <= 0:
        return 0.0
    return max(2.0 * math.sqrt(max(p * (1 - p), 0.0) / n), 1.0 / n)


def check_eval_mode(model: nn.Module) -> dict:
    training = sorted({type(m).__name__ for m in model.modules() if m.training})
    return _check("eval_mode", bool(training),
                  f"model was in train mode ({', '.join(training)}); BatchNorm/Dropout would change the model under "
                  "attack: call model.eval() (evaluate() switches to eval for the run and restores the mode after)"
                  if training else "all modules in eval mode")


def check_logits(logits: Tensor, tol: float = 1e-4) -> dict:
    """Rows summing to 1 with all entries in [0,1] are probabilities; all entries in [0,1] is suspicious too."""
    logits = logits.detach().float()
    in_unit = bool(((logits >= -tol) & (logits <= 1 + tol)).all())
    sums_to_one = bool(((logits.sum(1) - 1).abs() < tol).all())
    if in_unit and sums_to_one:
        return _check("outputs_are_logits", True, "model outputs look like probabilities (rows sum to 1, all in [0,1]); "
                      "return logits (drop the final softmax): CE/margin attacks on probabilities are weakened")
    if in_unit:
        return _check("outputs_are_logits", True, "all model outputs lie in [0,1] (sigmoid/probability-like?); "
                      "attacks expect unbounded logits")
    return _check("outputs_are_logits", False, "outputs are unbounded (look like logits)",
                  min=float(logits.min()), max=float(logits.max()))


def check_input_range(x: Tensor) -> dict:
    lo, hi = float(x.min()), float(x.max())
    bad = lo < 0 or hi > 1 or not math.isfinite(lo) or not math.isfinite(hi)
    return _check("inputs_in_unit_range", bad,
                  f"inputs span [{lo:.4g}, {hi:.4g}], outside [0,1]: pass un-normalised images in [0,1] and put the "
                  "normalisation inside the model (build_model(..., mean=..., std=...))" if bad
                  else f"inputs span [{lo:.4g}, {hi:.4g}]", min=lo, max=hi)


@torch.no_grad()
def check_expects_normalised(model: nn.Module, x: Tensor, y: Tensor, margin: float = 0.2) -> dict:
    """If standardising the inputs (per-channel mean/std of x) makes the model much more accurate, the model
    expects normalised inputs and the [0,1] evaluation is wrong."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    std = x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    logits = model(x)
    acc_raw = float((logits.argmax(1) == y).float().mean())
    acc_norm = float((model((x - mean) / std).argmax(1) == y).float().mean())
    flagged = acc_norm > acc_raw + margin
    chance = 1.0 / logits.shape[1]
    if flagged and acc_raw <= chance + 0.1:  # a collapsed model scores at random on either input: not a wrapping fault
        advice = (f"the model is near chance ({chance:.2f}) on [0,1] inputs, where a collapsed or untrained model can "
                  "score higher on standardised inputs by luck: check its training first (summary.json warnings); only "
                  "if it was trained on normalised inputs, put the normalisation inside it")
    else:
        advice = "the model seems to expect normalised inputs; wrap it so normalisation happens inside (inputs stay in [0,1])"
    return _check("model_takes_unit_range", flagged,
                  f"accuracy {acc_raw:.3f} on [0,1] inputs but {acc_norm:.3f} on standardised inputs: {advice}"
                  if flagged else f"accuracy {acc_raw:.3f} on [0,1] inputs vs {acc_norm:.3f} standardised",
                  acc_unit_range=acc_raw, acc_standardised=acc_norm)


@torch.no_grad()
def check_deterministic(model: nn.Module, x: Tensor, tol: float = 1e-5) -> dict:
    a, b = model(x), model(x)
    diff = float((a - b).abs().max())
    return _check("deterministic", diff > tol,
                  f"two forwards of the same input differ by {diff:.3g} (randomised defence or train mode?): "
                  "use EOT attacks (AutoAttack version='rand')" if diff > tol else "repeated forwards agree",
                  max_abs_diff=diff)


def check_zero_gradients(model: nn.Module, x: Tensor, y: Tensor) -> dict:
    """Input gradients of the CE loss that are exactly zero (or NaN) per sample make gradient attacks blind."""
    x = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    per_sample = grad.reshape(len(x), -1).abs().sum(1)  # (B,)
    n_zero = int((per_sample == 0).sum())
    n_nan = int(torch.isnan(per_sample).sum())
    flagged = n_zero > 0 or n_nan > 0
    return _check("nonzero_gradients", flagged,
                  f"{n_zero}/{len(x)} points have zero input gradient and {n_nan} NaN: possible gradient masking "
                  "(non-differentiable layer?); gradient attacks are unreliable, trust Square/BPDA instead"
                  if flagged else f"all {len(x)} points have nonzero input gradients", n_zero=n_zero, n_nan=n_nan)


def adversarial_stats(x: Tensor, x_adv: Tensor) -> dict:
    """Per-batch l-inf distance, range and NaN count of adversarial inputs (merged with merge_adversarial_stats)."""
    if len(x) == 0:
        return {"n": 0, "max_linf": 0.0, "min": None, "max": None, "n_nan": 0}
    d = (x_adv.detach().float() - x.detach().float()).reshape(len(x), -1).abs().max(1).values  # (B,)
    return {"n": len(x), "max_linf": float(torch.nan_to_num(d, nan=float("inf")).max()),
            "min": float(torch.nan_to_num(x_adv, nan=0.0).min()), "max": float(torch.nan_to_num(x_adv, nan=1.0).max()),
            "n_nan": int(torch.isnan(x_adv).any(dim=tuple(range(1, x_adv.dim()))).sum())}


def merge_adversarial_stats(parts: list[dict]) -> dict:
    parts = [p for p in parts if p["n"] > 0]
    if not parts:
        return {"n": 0, "max_linf": 0.0, "min": None, "max": None, "n_nan": 0}
    return {"n": sum(p["n"] for p in parts), "max_linf": max(p["max_linf"] for p in parts),
            "min": min(p["min"] for p in parts), "max": max(p["max"] for p in parts),
            "n_nan": sum(p["n_nan"] for p in parts)}


def check_adversarial(attack: str, stats: dict, eps: float, tol: float = EPS_TOL) -> dict:
    problems = []
    if stats["n"] and stats["max_linf"] > eps + tol:
        problems.append(f"max l-inf {stats['max_linf']:.8f} > eps {eps:.8f} + {tol:g}")
    if stats["n"] and (stats["min"] < 0 or stats["max"] > 1):
        problems.append(f"values in [{stats['min']:.6g}, {stats['max']:.6g}] outside [0,1]")
    if stats["n_nan"]:
        problems.append(f"{stats['n_nan']} inputs contain NaN")
    return _check(f"adversarial_valid:{attack}", bool(problems),
                  f"{attack}: " + "; ".join(problems) if problems
                  else f"{attack}: {stats['n']} inputs within eps (+{tol:g}), in [0,1], no NaN", **stats)


def check_pgd_monotone(results: dict[str, dict], n: int) -> dict:
    """More PGD steps (same loss and restarts) never raise robust accuracy beyond noise.

    results: attack name -> {"kind", "steps", "restarts", "robust_accuracy"}.
    """
    groups: dict[tuple, list[tuple[int, str, float]]] = {}
    for name, r in results.items():
        if r["kind"] in ("pgd", "cw"):
            groups.setdefault((r["kind"], r["restarts"]), []).append((r["steps"], name, r["robust_accuracy"]))
    violations = []
    for runs in groups.values():
        runs.sort()
        for i, (k1, a1, acc1) in enumerate(runs):
            for k2, a2, acc2 in runs[i + 1:]:
                tol = noise_tolerance(acc1, n)
                if acc2 > acc1 + tol:
                    violations.append(f"{a2} ({acc2:.4f}) > {a1} ({acc1:.4f}) + noise {tol:.4f}")
    if not any(len(v) > 1 for v in groups.values()):
        return {"name": "pgd_monotone_in_steps", "status": SKIPPED, "detail": "needs two PGD/CW runs of one kind"}
    return _check("pgd_monotone_in_steps", bool(violations),
                  "more PGD steps gave higher robust accuracy: " + "; ".join(violations)
                  + " (gradient masking or a broken step size?)" if violations
                  else "robust accuracy does not rise with more steps (within noise)")


def check_gradient_masking(results: dict[str, dict], n: int) -> dict:
    """Black-box Square beating every white-box attack, or one-step FGSM beating iterative PGD, by more than noise,
    suggests masked gradients (Athalye et al. 2018; AutoAttack's check_square_sr uses 0.2% for Square)."""
    iterative = {k: r["robust_accuracy"] for k, r in results.items()
                 if r["white_box"] and r["kind"] in ("pgd", "cw", "aa")}
    notes = []
    if "square" in results and iterative:
        best_name = min(iterative, key=iterative.get)
        best, sq = iterative[best_name], results["square"]["robust_accuracy"]
        tol = max(0.002, noise_tolerance(best, n))
        if sq < best - tol:
            notes.append(f"Square {sq:.4f} < best white-box {best_name} {best:.4f} - noise {tol:.4f}")
    if "fgsm" in results:
        pgd = {k: v for k, v in iterative.items() if results[k]["kind"] in ("pgd", "cw")}
        if pgd:
            best_name = min(pgd, key=pgd.get)
            fg, best = results["fgsm"]["robust_accuracy"], pgd[best_name]
            tol = noise_tolerance(best, n)
            if fg < best - tol:
                notes.append(f"FGSM {fg:.4f} < iterative {best_name} {best:.4f} - noise {tol:.4f}")
    if "square" not in results and "fgsm" not in results:
        return {"name": "no_gradient_masking", "status": SKIPPED, "detail": "needs Square or FGSM among the attacks"}
    return _check("no_gradient_masking", bool(notes),
                  "possible gradient masking: " + "; ".join(notes) if notes
                  else "weaker/black-box attacks do not beat the iterative white-box ones")


def check_autoattack_flags(flags: list[str]) -> dict:
    unique = list(dict.fromkeys(flags))
    return _check("autoattack_flags", bool(unique),
                  "AutoAttack flagged: " + " | ".join(unique) if unique else "AutoAttack raised no flags",
                  flags=unique)
