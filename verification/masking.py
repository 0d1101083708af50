"""AutoAttack against PGD on the same model and the same test images, from the per-image masks of two evaluations.

AutoAttack runs on a seeded subset (``mixacm.evaluate.subset_indices``) while PGD may cover the whole test split;
comparing a PGD mean over seeds and 10,000 images with an AutoAttack number on 500 images of one seed mixes the
gap with sampling error. Here each AutoAttack evaluation is paired with a PGD evaluation of the same model
(``model_sha256``): on identical images directly, or, where PGD covered the whole split, on the AutoAttack images
taken from PGD's mask (their fingerprint, ``indices_sha256``, must match the reconstructed subset).
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from mixacm.masks import indices_sha256

from .runner import metric_mask

PGD = re.compile(r"^pgd(\d+)$")


def _mask(ev: dict[str, Any], attack: str) -> np.ndarray | None:
    m = metric_mask(ev, attack)
    return None if m is None else np.asarray(m, dtype=bool)


def _aa_images(full: dict[str, Any], aa: dict[str, Any]) -> np.ndarray | None:
    """Positions of the AutoAttack evaluation's images inside ``full``'s images, when ``full`` covered a whole split
    and the subset's fingerprint confirms the reconstruction; else None."""
    n_total = int(full["n_eval"])
    if full.get("indices_sha256") != indices_sha256(range(n_total)):
        return None
    from mixacm.evaluate import subset_indices

    idx = subset_indices(n_total, int(aa["n_eval"]), int(aa["config"]["seed"])).numpy()
    return idx if indices_sha256(idx.tolist()) == aa.get("indices_sha256") else None


def autoattack_vs_pgd(evals: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per AutoAttack evaluation that a PGD evaluation of the same model can be paired with:
    {"eval", "pgd_eval", "pgd_attack", "n", "autoattack", "pgd" (both % on the same images), "pgd_only"
    (images PGD breaks and AutoAttack does not: 0 for a sound evaluation, AutoAttack being the stronger)}.
    ``evals``: evaluation name -> mixacm.evaluate result (``verification.results_dir.load_run_files``)."""
    rows = []
    for name, aa in sorted(evals.items()):
        if "autoattack" not in aa.get("attacks", {}):
            continue
        aa_mask = _mask(aa, "autoattack")
        if aa_mask is None:
            continue
        best = None
        for other, ev in sorted(evals.items()):
            if other == name or ev.get("model_sha256") != aa.get("model_sha256"):
                continue
            steps = {int(m.group(1)): a for a in ev.get("attacks", {}) if (m := PGD.match(a))}
            if not steps or (best is not None and max(steps) <= best[0]):
                continue
            mask = _mask(ev, steps[max(steps)])  # the strongest PGD this evaluation ran
            if mask is None:
                continue
            if ev.get("indices_sha256") != aa.get("indices_sha256"):
                pos = _aa_images(ev, aa)
                if pos is None:
                    continue
                mask = mask[pos]
            best = (max(steps), other, steps[max(steps)], mask)
        if best is None:
            continue
        _, other, attack, pgd_mask = best
        rows.append({"eval": name, "pgd_eval": other, "pgd_attack": attack, "n": int(aa["n_eval"]),
                     "autoattack": 100.0 * float(aa_mask.mean()), "pgd": 100.0 * float(pgd_mask.mean()),
                     "pgd_only": int((aa_mask & ~pgd_mask).sum())})
    return rows
