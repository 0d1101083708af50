"""The record tool: copies a plan's outputs with bit-packed per-image masks (verification/test_paired.py); every
recorded set is valid and its claims are today's."""
import json


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


def test_generated_prose_about_the_records_is_current():
    """Every set's README.md, reports/recorded/index.html and the README's verdict block are what
    reports.summary generates from the records today: no number about a record is typed by hand."""
    from reports import summary

    stale = [str(f) for f, text in summary.outputs().items() if not f.is_file() or f.read_text() != text]
    assert not stale, f"stale generated files (run python -m reports.summary): {stale}"


def test_summary_counts_tested_claims_apart_from_claims_not_run(tmp_path):
    """A claim a set did not run shows as '–' in the verdict table and is listed as not run in the index, never
    among the sets that tested it."""
    import shutil
    from pathlib import Path

    from reports import summary
    src = sorted(summary.recorded_sets())[0]
    d = tmp_path / "one"
    d.mkdir()
    for f in ("results.json", "claims.json"):
        shutil.copy2(src / f, d / f)
    cl = json.loads((d / "claims.json").read_text())
    cl[0]["verdict"] = "not run here"
    (d / "claims.json").write_text(json.dumps(cl))
    table = summary.verdict_table(tmp_path).splitlines()
    assert table[2].endswith("| – |"), table[2]
    data = summary.index_data(tmp_path)
    first = data["claims"][[c["id"] for c in data["claims"]].index(cl[0]["id"])]
    assert first["sets"] == [] and first["not_run"] == ["one"]
    text = summary.set_readme(d)
    assert Path(d / "README.md").exists() is False and "Not run in this set (" in text
    assert cl[0]["statement"].rstrip(".") in text.split("Not run in this set")[1].split("\n")[0]
    assert f"| {cl[0]['statement']} |" not in text
