"""CPU tier (``pytest verification/ --cpu``): the CPU-scale reproduction on the real CIFAR-10 JPEG copy (about 3.2 h on 2 cores).

Trains the Fast-AT teacher and every student of ``verification.tiers.cpu_tier_plan`` from scratch (resumable through
``--results-dir``), evaluates them, computes the claims from these fresh runs, then compares the verdicts with the
recorded reproduction in ``reports/recorded/cpu/`` (numbers must agree within the measured spread)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from verification import schema
from verification.plans import cifar_jpeg_root
from verification.tiers import RECORDED_CPU as RECORDED
from verification.tiers import run_cpu_tier

pytestmark = pytest.mark.cpu


@pytest.fixture(scope="module")
def cpu_results(request):
    root = cifar_jpeg_root(request.config.getoption("--data-dir"))
    if root is None:
        pytest.fail("cpu tier needs the CIFAR-10 JPEG copy: pass --data-dir or set MIXACM_CIFAR10_JPEG")
    out = Path(request.config.getoption("--results-dir") or "reports/out/cpu")
    return out, run_cpu_tier(root, out)


def test_results_valid_and_claims_computed(cpu_results):
    out, results = cpu_results
    schema.validate_results(results)
    claims = json.loads((out / "claims.json").read_text())
    schema.validate_claims(claims)


def _key(record: dict) -> tuple:
    """A cell; Fig. 3 holds one curve per row, so its points differ only in data_fraction."""
    return record["table"], record["row"], record["column"], record["setting"].get("data_fraction")


def test_numbers_within_spread_of_recorded(cpu_results):
    """Each fresh cell within 3 x the larger of the two runs' std (or 3 pp when a std is missing) of the record."""
    _, results = cpu_results
    rec_path = RECORDED / "results.json"
    if not rec_path.is_file():
        pytest.fail(f"no recorded reproduction at {rec_path}")
    recorded = {_key(r): r for r in json.loads(rec_path.read_text())["results"]}
    bad = []
    for r in results["results"]:
        key = _key(r)
        if key not in recorded or r["table"] in ("bench",):
            continue
        ref = recorded[key]
        tol = 3 * max(r["std"] or 0, ref["std"] or 0) or 3.0
        if math.fabs(r["value"] - ref["value"]) > tol:
            bad.append(f"{key}: expected {ref['value']:.2f}, got {r['value']:.2f}, "
                       f"difference {r['value'] - ref['value']:+.2f}, tolerance {tol:.2f}, source {rec_path}")
    assert not bad, "\n".join(bad)


def test_verdicts_match_recorded(cpu_results):
    out, _ = cpu_results
    rec_path = RECORDED / "claims.json"
    if not rec_path.is_file():
        pytest.fail(f"no recorded claims at {rec_path}")
    fresh = {c["id"]: c["verdict"] for c in json.loads((out / "claims.json").read_text())}
    recorded = {c["id"]: c["verdict"] for c in json.loads(rec_path.read_text())}
    diff = {k: (recorded.get(k), fresh.get(k)) for k in set(fresh) | set(recorded) if fresh.get(k) != recorded.get(k)}
    assert not diff, f"verdicts differ (recorded, fresh): {diff}"
