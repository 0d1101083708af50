"""The quick theory pass gives the verdicts declared in theory/expected_verdicts.json (with their reasons) and, where
a verdict alone cannot fail, the declared deciding numbers: a dropped factor in a bound or a loss changes one of
them. Every claim the runner produces must be declared, and every declared claim must be produced."""
from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import pytest

from theory import report

EXPECTED = json.loads((Path(report.__file__).parent / "expected_verdicts.json").read_text())["claims"]


@pytest.fixture(scope="module")
def quick_claims():
    return {c["id"]: c for c in report.run_all(report.MODULES, quick=True)["claims"]}


def test_every_module_takes_the_runners_quick_flag():
    import importlib
    for name in report.MODULES:
        params = inspect.signature(importlib.import_module(name).checks).parameters
        assert not params or list(params) == ["quick"], f"{name}.checks{tuple(params)}: the runner passes quick="


def test_declared_and_produced_claims_are_the_same(quick_claims):
    assert sorted(quick_claims) == sorted(EXPECTED)


def _get(evidence, path):
    for part in path.split("."):
        evidence = evidence[part]
    return evidence


@pytest.mark.parametrize("cid", sorted(EXPECTED))
def test_verdict_and_deciding_numbers(cid, quick_claims):
    want, got = EXPECTED[cid], quick_claims[cid]
    assert got["verdict"] == want["verdict"], (f"{cid}: verdict {got['verdict']!r}, declared {want['verdict']!r} "
                                               f"({want['reason']})")
    for path, spec in want.get("numbers", {}).items():
        value = float(_get(got["evidence"], path))
        ok = math.isclose(value, spec["value"], rel_tol=spec["rtol"], abs_tol=1e-12)
        assert ok, (f"{cid}: {path} expected {spec['value']}, got {value}, difference {value - spec['value']:.3g}, "
                    f"rtol {spec['rtol']}; source theory/expected_verdicts.json ({want['reason']})")
