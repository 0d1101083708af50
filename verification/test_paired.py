"""Smoke tier: the paired decision rule (verification/claims.py) on per-image masks, Holm's adjustment within a
claim, and the per-image block of a record (verification/schema.py, verification/runner.per_image)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mixacm.masks import indices_sha256, pack, unpack
from verification import claims
from verification.runner import per_image
from verification.schema import SchemaError, make_record

pytestmark = pytest.mark.smoke


def _record(row, masks, key="k" * 64, table="table6", column="Robustness"):
    masks = np.asarray(masks, dtype=bool)
    runs = [100.0 * m.mean() for m in masks]
    block = {"n": masks.shape[1], "indices_sha256": key, "masks": [pack(m) for m in masks]}
    return make_record(table, row, column, {"attack": "pgd20", "eval_n": masks.shape[1]}, runs,
                       list(range(len(masks))), per_image=block)


def _stat(record):
    return claims.Values.from_records([record]).get(record["table"], record["row"], record["column"])


def test_masks_round_trip_and_fingerprint():
    rng = np.random.default_rng(0)
    for n in (1, 7, 8, 9, 10_000):
        m = rng.random(n) < 0.3
        assert (unpack(pack(m), n) == m).all()
    with pytest.raises(ValueError, match="holds"):
        unpack(pack(np.ones(16, bool)), 3)
    assert indices_sha256([0, 1, 2]) != indices_sha256([0, 1, 3])


def test_paired_condition_matches_the_stated_formula():
    """delta, var = sd_a^2/n_a + sd_b^2/n_b + var_i(d_i)/N and the seed parts' Welch-Satterthwaite df, computed
    here by hand from the masks, are what condition() uses; the test is named paired."""
    rng = np.random.default_rng(1)
    n = 400
    base = rng.random(n) < 0.4
    a = np.stack([base ^ (rng.random(n) < 0.05) for _ in range(3)])
    b = np.stack([base ^ (rng.random(n) < 0.08) for _ in range(2)])
    sa, sb = _stat(_record("Std. Setting", a)), _stat(_record("w/o KD", b))
    c = claims.condition(sa, sb, scale=0.5, const=1.0, paper=False, text="a > 0.5 b + 1")
    acc_a, acc_b = 100 * a.mean(1), 100 * b.mean(1)
    d = 100 * a.mean(0) - 0.5 * 100 * b.mean(0)
    parts = [acc_a.var(ddof=1) / 3, 0.25 * acc_b.var(ddof=1) / 2, d.var(ddof=1) / n]
    var = sum(parts)
    df = (parts[0] + parts[1]) ** 2 / (parts[0] ** 2 / 2 + parts[1] ** 2 / 1)  # the seed parts' df only
    delta = acc_a.mean() - 0.5 * acc_b.mean() - 1.0
    assert c["test"] == claims.TEST_PAIRED
    assert c["delta"] == pytest.approx(delta, abs=1e-4) and c["se"] == pytest.approx(var ** 0.5, rel=1e-4)
    assert c["df"] == pytest.approx(df, rel=1e-3)
    assert c["p_greater"] == pytest.approx(stats.t.sf(delta / var ** 0.5, df), rel=1e-3)
    assert c["a"]["paired_images"] == n


def test_pairing_sees_an_effect_the_unpaired_rule_cannot():
    """Two arms that agree on every image but 1 % of them (+1 pp, 3 seeds each, small seed spread): the paired rule
    holds; the same numbers without masks (unpaired, each arm's binomial variance) cannot decide."""
    rng = np.random.default_rng(2)
    n = 10_000
    base = rng.random(n) < 0.3
    extra = np.zeros(n, bool)
    extra[np.flatnonzero(~base)[:100]] = True  # 100 images only the better arm gets right: +1 pp
    def arm(better):
        out = []
        for _ in range(3):
            m = (base | extra) if better else base.copy()
            flip = rng.choice(n, 15, replace=False)  # a little seed-to-seed noise
            m[flip] = ~m[flip]
            out.append(m)
        return np.stack(out)
    ra, rb = _record("Std. Setting", arm(True)), _record("w/o KD", arm(False))
    paired = claims.condition(_stat(ra), _stat(rb), paper=False, text="a > b")
    for r in (ra, rb):
        r.pop("per_image")
    unpaired = claims.condition(_stat(ra), _stat(rb), paper=False, text="a > b")
    assert paired["status"] == "holds" and paired["test"] == claims.TEST_PAIRED, paired
    assert unpaired["status"] == "unclear" and unpaired["test"] == claims.TEST, unpaired
    assert paired["se"] < unpaired["se"] / 3


def test_masks_of_different_images_are_not_paired():
    m = np.random.default_rng(3).random((2, 50)) < 0.5
    a = _stat(_record("Std. Setting", m, key="a" * 64))
    b = _stat(_record("w/o KD", m, key="b" * 64))
    assert claims.condition(a, b, paper=False, text="a > b")["test"] == claims.TEST


def test_holm_turns_a_lone_failure_back_to_unclear():
    """Two tested conditions: p_less 0.03 fails alone, but Holm needs 0.03 < 0.05 / 2: unclear, and the claim is
    inconclusive, not "not reproduced". At p_less 0.01 it survives (adjusted 0.02)."""
    def cond(p_less, status):
        return {"condition": "x", "status": status, "reason": None, "p_less": p_less, "p_greater": 1 - p_less,
                "alpha": claims.ALPHA}
    out = claims.holm([cond(0.03, "fails"), cond(0.4, "unclear")])
    assert out[0]["status"] == "unclear" and out[0]["p_less_holm"] == pytest.approx(0.06) and "Holm" in out[0]["reason"]
    assert claims.verdict_of(out)[0] == "inconclusive"
    out = claims.holm([cond(0.01, "fails"), cond(0.4, "unclear")])
    assert out[0]["status"] == "fails" and out[0]["p_less_holm"] == pytest.approx(0.02)
    assert out[1]["p_less_holm"] == pytest.approx(0.4)  # step-down: max(0.02, 1 x 0.4)
    assert claims.verdict_of(out)[0] == "not reproduced"


def test_record_masks_must_be_the_runs_own():
    m = np.random.default_rng(4).random((2, 40)) < 0.5
    r = _record("Std. Setting", m)
    with pytest.raises(SchemaError, match="masks"):
        make_record("table6", "Robustness", "x", {}, [r["runs"][0] + 5, r["runs"][1]], [0, 1],
                    per_image=r["per_image"])
    with pytest.raises(SchemaError, match="one mask per run"):
        make_record("table6", "Robustness", "x", {}, r["runs"][:1], [0], per_image=r["per_image"])


def _eval(mask, indices):
    return {"clean": {"correct_mask": list(map(int, mask))}, "attacks": {"pgd20": {"robust_mask": list(map(int, mask))}},
            "worst_case": {"robust_mask": list(map(int, mask))}, "indices": indices}


def test_per_image_block_from_evaluations():
    ev = [_eval([1, 0, 1], [0, 1, 2]), _eval([0, 0, 1], [0, 1, 2])]
    block = per_image(ev, "pgd20")
    assert block["n"] == 3 and block["indices_sha256"] == indices_sha256([0, 1, 2])
    assert [list(unpack(x, 3)) for x in block["masks"]] == [[True, False, True], [False, False, True]]
    assert per_image([_eval([1, 0, 1], [0, 1, 2]), _eval([1, 0, 1], [0, 1, 3])], "clean") is None  # other images
    ev[1]["clean"].pop("correct_mask")
    assert per_image(ev, "clean") is None  # an evaluation that kept no mask


def test_recorded_evaluations_keep_packed_masks_that_pair_as_before():
    """reports.archive keeps each evaluation's masks bit-packed; the packed file gives the same per-image
    block as the original, so a recorded set can be re-analysed paired."""
    from reports.archive import compact_masks

    ev = {**_eval([1, 0, 1, 1], [3, 5, 8, 9]), "n_eval": 4}
    packed = compact_masks(ev)
    assert "indices" not in packed and "correct_mask" not in packed["clean"]
    assert packed["indices_sha256"] == indices_sha256([3, 5, 8, 9])
    assert per_image([packed], "pgd20") == per_image([ev], "pgd20")


def test_an_added_image_term_never_lowers_p():
    """Two seeds per side with nearly equal runs: adding the evaluation's variance (binomial or paired) must not
    make the difference look more significant than the seed spread alone (df stays the seeds')."""
    a, b = claims.Stat(52.0, 0.3, 2, "a"), claims.Stat(50.0, 0.3, 2, "b")
    seed_only = claims.condition(a, b, paper=False, text="a > b")
    a.eval_n = b.eval_n = 500
    with_images = claims.condition(a, b, paper=False, text="a > b")
    assert with_images["se"] > seed_only["se"] and with_images["df"] == pytest.approx(seed_only["df"])
    assert with_images["p_greater"] >= seed_only["p_greater"]
