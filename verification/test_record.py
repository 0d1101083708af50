"""The record tool: copies a plan's outputs without per-sample masks; the claims table renders as markdown."""
import json

from verification.record import _strip_masks, claims_markdown


def test_strip_masks_keeps_aggregates():
    ev = {"clean": {"accuracy": 0.5, "correct_mask": [1, 0]}, "indices": [3, 4],
          "attacks": {"pgd20": {"robust_accuracy": 0.25, "robust_mask": [1, 0]}}}
    out = _strip_masks(ev)
    assert out == {"clean": {"accuracy": 0.5}, "attacks": {"pgd20": {"robust_accuracy": 0.25}}}
    assert json.dumps(out)  # still JSON


def test_claims_markdown_shows_both_sides_and_verdicts():
    claims = [{"id": "x", "statement": "S.", "source": "Table 6", "verdict": "reproduced", "paper_verdict": "reproduced",
               "numbers": [{"condition": "a > b", "a": {"mean": 3.0, "std": 0.5}, "b": {"mean": 1.0, "std": None},
                            "status": "holds"}],
               "paper_numbers": [{"condition": "a > b", "a": {"mean": 48.38, "std": None}, "b": {"mean": 0.21},
                                  "status": "holds"}]}]
    md = claims_markdown(claims).splitlines()
    assert md[0].startswith("| claim |") and len(md) == 3
    assert "**reproduced**" in md[2] and "3.00 ± 0.50 vs 1.00" in md[2] and "48.38 vs 0.21" in md[2]


def test_every_recorded_set_follows_the_schema_and_names_no_machine_path():
    """Each directory under reports/recorded/ (the literal cpu run, the width-equivalent one, ...) is read by others:
    valid results and claims, and no absolute path of the machine that made it."""
    import re
    from pathlib import Path

    from verification import schema
    root = Path(__file__).resolve().parents[1] / "reports" / "recorded"
    sets = sorted(d for d in root.iterdir() if (d / "results.json").is_file())
    assert sets, f"no recorded set under {root}"
    for d in sets:
        schema.validate_results(json.loads((d / "results.json").read_text()))
        schema.validate_claims(json.loads((d / "claims.json").read_text()))
        for f in [d / "results.json", d / "claims.json", *d.glob("runs/*/seed*/*.json"), *d.glob("evals/*.json")]:
            hit = re.search(r'"(/(?:work|tmp|home|root|data)/[^"]*)"', f.read_text())
            assert hit is None, f"{f.relative_to(root)} names {hit.group(1)}"


def test_a_records_run_files_are_not_ignored_by_git(tmp_path):
    """Per-run provenance (config, meta, summary, metrics) of a record must reach the repository: a `runs/` rule
    meant for results dirs must not swallow reports/recorded/<set>/runs/."""
    import shutil
    import subprocess
    from pathlib import Path

    import pytest

    repo = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    probes = [f"reports/recorded/any-set/runs/mixacm/seed0/{f}" for f in ("config.json", "meta.json", "summary.json",
                                                                          "metrics.jsonl")]
    out = subprocess.run(["git", "check-ignore", "--no-index", *probes], cwd=repo, capture_output=True, text=True)
    assert out.stdout.strip() == "", f"git ignores recorded run files: {out.stdout.split()}"
    # while a results dir's runs (checkpoints) stay out of the repository
    out = subprocess.run(["git", "check-ignore", "--no-index", "runs/x/seed0/last.pt",
                          "reports/out/cpu/runs/x/seed0/last.pt"], cwd=repo, capture_output=True, text=True)
    assert len(out.stdout.split()) == 2, out.stdout


def test_every_recorded_sets_claims_are_what_todays_rule_computes_from_its_results():
    """A recorded claims.json is derived data: recomputing it from the set's results.json with today's claims code
    gives the same claims, so a change to the rule (or to the paper's rows) cannot leave a stale verdict on record.
    After changing verification/claims.py: python -m verification.claims --results DIR --out DIR/claims.json."""
    from pathlib import Path

    from verification.claims import evaluate_claims
    root = Path(__file__).resolve().parents[1] / "reports" / "recorded"
    stale = set()
    for d in sorted(d for d in root.iterdir() if (d / "results.json").is_file()):
        fresh = json.loads(json.dumps(evaluate_claims(json.loads((d / "results.json").read_text())["results"])))
        recorded = json.loads((d / "claims.json").read_text())
        for c in [c for c in fresh if c not in recorded] + [c for c in recorded if c not in fresh]:
            stale.add(f"{d.name}: {c['id']}")
    assert not stale, f"recorded claims differ from a recomputation (rerun python -m verification.claims): {sorted(stale)}"
