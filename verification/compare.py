"""Compare a reproduced record with the paper's cell under a declared tolerance (gpu tier).

Tolerance rule (declared once, used everywhere): clean accuracy ±1.5 pp, robust accuracy ±2.0 pp; when the paper
prints a std for the cell, the tolerance is max(base, K_STD × paper std). Size ratios are exact at any scale: they
match when they round to the printed number, i.e. within half a unit of its last printed digit ("73.5%": ±0.05),
never tighter than ±0.01 pp. A missing ('-') paper cell has nothing to compare with.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .schema import cell_key

BASE_TOLERANCE_PP = {"clean": 1.5, "robust": 2.0, "size_ratio": 0.01}
K_STD = 2.0
RULE = (f"|ours - paper| <= tol, tol = {BASE_TOLERANCE_PP['clean']} pp (clean) / {BASE_TOLERANCE_PP['robust']} pp "
        f"(robust), or max(that, {K_STD:g} x paper std) when the paper gives a std")


def tolerance_for(cell: dict[str, Any]) -> float:
    """Absolute tolerance in percentage points for one paper cell (rule: see RULE)."""
    if cell["metric"] not in BASE_TOLERANCE_PP:
        raise ValueError(f"no tolerance for metric {cell['metric']!r}; valid: {', '.join(BASE_TOLERANCE_PP)}")
    tol = BASE_TOLERANCE_PP[cell["metric"]]
    if cell["metric"] == "size_ratio" and cell.get("value") is not None:
        # the paper's rounding: the data keeps the printed number, so its decimals are the printed ones
        # (a printed trailing zero, "18.40%", reads as one decimal: ±0.05 there)
        text = repr(float(cell["value"]))
        decimals = len(text.split(".")[1].rstrip("0")) if "." in text else 0
        tol = max(tol, 0.5 * 10.0 ** -decimals)
    if cell.get("std") is not None:
        tol = max(tol, K_STD * cell["std"])
    return tol


def _source(cell: dict[str, Any]) -> str:
    s = cell["source"]
    return f"{cell['table']} row {cell['row']!r} column {cell['column']!r} ({s['file']}:{s['line']})"


@dataclass
class Comparison:
    expected: float | None
    got: float
    difference: float | None
    tolerance: float
    passed: bool | None  # None: the paper has no value for this cell
    source: str
    n_runs: int
    got_std: float | None

    @property
    def message(self) -> str:
        status = {True: "within tolerance", False: "OUT OF TOLERANCE", None: "paper has no value ('-')"}[self.passed]
        exp = "n/a" if self.expected is None else f"{self.expected:.2f}"
        diff = "n/a" if self.difference is None else f"{self.difference:+.2f}"
        spread = f" ± {self.got_std:.2f}" if self.got_std is not None else ""
        return (f"{status}: expected {exp}, got {self.got:.2f}{spread} (n_runs={self.n_runs}), difference {diff} pp, "
                f"tolerance ±{self.tolerance:.2f} pp, source {self.source}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["message"] = self.message
        return d


def compare(record: dict[str, Any], cell: dict[str, Any]) -> Comparison:
    """Paper cell vs reproduced record (its ``value`` is the mean over runs)."""
    if cell_key(record) != cell_key(cell):
        raise ValueError(f"record {record['table']}/{record['row']}/{record['column']} does not reproduce "
                         f"{cell['table']}/{cell['row']}/{cell['column']}")
    tol = tolerance_for(cell)
    got = float(record["value"])
    if cell["value"] is None:
        return Comparison(None, got, None, tol, None, _source(cell), record["n_runs"], record.get("std"))
    diff = got - float(cell["value"])
    return Comparison(float(cell["value"]), got, diff, tol, abs(diff) <= tol + 1e-9, _source(cell),
                      record["n_runs"], record.get("std"))


def assert_matches(record: dict[str, Any], cell: dict[str, Any]) -> Comparison:
    """Raise AssertionError with expected/got/difference/tolerance/source when out of tolerance."""
    cmp = compare(record, cell)
    if cmp.passed is False:
        raise AssertionError(cmp.message)
    return cmp
