"""Smoke tier: tolerance rule and self-explaining failure messages of verification.compare."""
from __future__ import annotations

import pytest

from verification import compare, paper_data
from verification.schema import make_record

pytestmark = pytest.mark.smoke


def _record_for(cell, values):
    return make_record(cell["table"], cell["row"], cell["column"], cell["setting"], values, list(range(len(values))))


def test_tolerance_rule():
    clean = paper_data.find_cell("table3", "CIFAR-10 / Ours", "Acc.")
    robust = paper_data.find_cell("table3", "CIFAR-10 / Ours", "PGD 20")
    with_std = paper_data.find_cell("table1", "Ours (w/ Mixup)", "PGD 100")  # 56.65 ± 0.93
    assert compare.tolerance_for(clean) == 1.5
    assert compare.tolerance_for(robust) == 2.0
    assert compare.tolerance_for(with_std) == pytest.approx(max(2.0, 2 * 0.93))
    small_std = paper_data.find_cell("table1", "Ours (w/ Mixup)", "Clean Acc.")  # ± 0.05 -> base wins
    assert compare.tolerance_for(small_std) == 1.5


def test_within_and_outside():
    cell = paper_data.find_cell("table3", "CIFAR-10 / Ours", "PGD 20")  # 48.09
    ok = compare.assert_matches(_record_for(cell, [47.0, 48.0, 49.0]), cell)
    assert ok.passed and ok.difference == pytest.approx(-0.09)
    with pytest.raises(AssertionError) as err:
        compare.assert_matches(_record_for(cell, [44.0, 45.0, 46.0]), cell)
    msg = str(err.value)
    for word in ("expected 48.09", "got 45.00", "difference -3.09", "tolerance ±2.00", "source table3",
                 "mixacm-main-paper.md:217", "OUT OF TOLERANCE"):
        assert word in msg, (word, msg)


def test_missing_paper_cell_is_not_a_pass():
    cell = paper_data.find_cell("table1", "MART (Wang et al. [78])", "Auto Attack")
    cmp = compare.compare(_record_for(cell, [50.0]), cell)
    assert cmp.passed is None and "paper has no value" in cmp.message


def test_wrong_cell_refused():
    a = paper_data.find_cell("table3", "CIFAR-10 / Ours", "PGD 20")
    b = paper_data.find_cell("table3", "CIFAR-10 / Ours", "Acc.")
    with pytest.raises(ValueError, match="does not reproduce"):
        compare.compare(_record_for(a, [1.0]), b)


def test_size_ratio_tolerance_is_half_a_unit_of_the_printed_digit():
    """The paper prints size ratios to 1-3 decimals ("73.5%", "25.04%", "9.227%"): a ratio matches when it rounds
    to the printed number (never tighter than 0.01 pp)."""
    one = paper_data.find_cell("table10", "WRN-28-10 -> WRN-22-10", "Size Ratio")  # printed 73.5%
    two = paper_data.find_cell("table10", "WRN-28-10 -> WRN-28-5", "Size Ratio")  # printed 25.04%
    three = paper_data.find_cell("table4", "Depth & Channel: WRN-34-20 -> WRN-16-10", "Size Ratio")  # 9.227%
    assert compare.tolerance_for(one) == pytest.approx(0.05)
    assert compare.tolerance_for(two) == compare.tolerance_for(three) == pytest.approx(0.01)
    assert compare.assert_matches(_record_for(one, [73.46]), one).passed
    with pytest.raises(AssertionError, match="tolerance ±0.05"):
        compare.assert_matches(_record_for(one, [73.44]), one)


def test_every_size_ratio_of_the_specs_matches_the_paper_except_the_declared_erratum():
    """Parameter counts of our architectures against every printed size ratio (no training: exact at any scale)."""
    from verification import specs
    from verification.plans import param_ratio

    cells = [s for s in specs.all_specs() if s["kind"] == "param_ratio"]
    assert len(cells) >= 20
    off = {}
    for s in cells:
        cmp = compare.compare(_record_for(paper_data.find_cell(s["table"], s["row"], s["column"]), [param_ratio(s)]),
                              paper_data.find_cell(s["table"], s["row"], s["column"]))
        if not cmp.passed:
            off[s["id"]] = cmp.message
    assert set(off) == {"table4:Depth & Channel: WRN-34-20 -> WRN-16-10:Size Ratio"}, off
