"""AutoAttack paired with PGD on the same model and images (verification/masking.py), on evaluations made here."""
import numpy as np
import pytest

from mixacm.evaluate import subset_indices
from mixacm.masks import indices_sha256, pack
from verification.masking import autoattack_vs_pgd


def _eval(model: str, idx, seed: int, attacks: dict[str, np.ndarray]) -> dict:
    idx = list(map(int, idx))
    return {"schema": "mixacm.evaluate/1", "model_sha256": model, "n_eval": len(idx), "indices_sha256": indices_sha256(idx),
            "config": {"seed": seed, "n": len(idx)},
            "attacks": {a: {"robust_accuracy": float(m.mean()), "robust_mask_packed": pack(m)} for a, m in attacks.items()}}


@pytest.fixture
def split():
    rng = np.random.default_rng(0)
    n_total, n_aa, seed = 400, 50, 3
    pgd = rng.random(n_total) < 0.4
    idx = subset_indices(n_total, n_aa, seed).numpy()
    aa = pgd[idx].copy()
    aa[np.flatnonzero(aa)[:4]] = False  # AutoAttack breaks 4 more of the subset's images
    return n_total, idx, seed, pgd, aa


def test_a_whole_split_pgd_is_restricted_to_the_autoattack_images(split):
    n_total, idx, seed, pgd, aa = split
    weak = pgd | (np.arange(n_total) % 2 == 0)  # a weaker PGD: the strongest one evaluated is used
    evals = {"m-s3": _eval("A", range(n_total), seed, {"pgd20": pgd, "pgd7": weak}),
             "m-s3-aa": _eval("A", idx, seed, {"autoattack": aa})}
    (row,) = autoattack_vs_pgd(evals)
    assert row["pgd_eval"] == "m-s3" and row["pgd_attack"] == "pgd20" and row["n"] == len(idx)
    assert row["pgd"] == pytest.approx(100 * pgd[idx].mean()) and row["pgd"] != pytest.approx(100 * pgd.mean())
    assert row["autoattack"] == pytest.approx(100 * aa.mean())
    assert row["pgd"] - row["autoattack"] == pytest.approx(100 * 4 / len(idx))
    assert row["pgd_only"] == 0


def test_identical_images_pair_directly_and_a_weaker_autoattack_is_counted(split):
    _, idx, seed, pgd, _ = split
    sub = pgd[idx]
    aa = sub.copy()
    aa[np.flatnonzero(~sub)[:2]] = True  # two images PGD breaks survive AutoAttack
    evals = {"m-s3": _eval("A", idx, seed, {"pgd20": sub}), "m-s3-aa": _eval("A", idx, seed, {"autoattack": aa})}
    (row,) = autoattack_vs_pgd(evals)
    assert row["pgd_only"] == 2 and row["pgd"] == pytest.approx(100 * sub.mean())


def test_no_pair_across_models_or_unmatched_images(split):
    n_total, idx, seed, pgd, aa = split
    other_model = {"m-s3": _eval("B", range(n_total), seed, {"pgd20": pgd}),
                   "m-s3-aa": _eval("A", idx, seed, {"autoattack": aa})}
    assert autoattack_vs_pgd(other_model) == []
    # an AutoAttack subset drawn with another seed than its config states: the fingerprint does not match
    wrong = _eval("A", subset_indices(n_total, len(idx), seed + 1).numpy(), seed, {"autoattack": aa})
    assert autoattack_vs_pgd({"m-s3": _eval("A", range(n_total), seed, {"pgd20": pgd}), "m-s3-aa": wrong}) == []
    # PGD on a subset that is not the whole split and not the AutoAttack images
    part = _eval("A", range(n_total - 1), seed, {"pgd20": pgd[:-1]})
    assert autoattack_vs_pgd({"m-s3": part, "m-s3-aa": _eval("A", idx, seed, {"autoattack": aa})}) == []
