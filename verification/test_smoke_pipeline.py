"""Smoke tier: the whole pipeline (train teacher -> students -> evaluate -> records -> claims -> report) end to end
on the embedded digits default and on a slice of the real CIFAR-10 copy. Checks the machinery, not the paper."""
from __future__ import annotations

import json

import pytest

from verification import schema
from verification.claims import CLAIMS
from verification.runner import run_plan
from verification.plans import cifar_jpeg_root, cifar_slice_plan, digits_plan


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    import torch
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("digits")
    return out, run_plan(digits_plan(epochs=2, seeds=(0, 1), extra=False), out)


def test_digits_results_follow_the_schema(digits_run):
    out, results = digits_run
    schema.validate_results(json.loads((out / "results.json").read_text()))
    cells = {(r["table"], r["row"], r["column"]) for r in results["results"]}
    assert ("table6", "Robustness", "Std. Setting") in cells and ("table3", "CIFAR-10 / PGD7-AT", "Acc.") in cells
    for r in results["results"]:
        assert r["n_runs"] == (1 if r["setting"].get("run") == "teacher" else 2), r
        assert r["setting"]["scale"], "every record states how it differs from the paper's setting"
        if r["table"] not in ("bench", "fig4"):  # accuracies keep each seed's per-image masks: comparisons are paired
            assert r.get("per_image") and r["per_image"]["n"] == r["setting"]["eval_n"] == 300, r["table"]


def test_every_evaluation_ran_the_gradient_masking_check(digits_run):
    out, _ = digits_run
    for f in sorted((out / "evals").glob("*.json")):
        checks = {c["name"]: c["status"] for c in json.loads(f.read_text())["self_checks"]}
        assert checks["no_gradient_masking"] in ("ok", "flag"), (f.name, checks["no_gradient_masking"])


def test_records_name_no_directory_of_this_machine(digits_run):
    """Teacher checkpoints are named relative to the results directory (they once carried /work/... paths)."""
    out, results = digits_run
    text = (out / "results.json").read_text()
    assert str(out) not in text and str(out.resolve()) not in text
    teachers = {r["config"]["train"]["teacher"] for r in results["results"] if r["config"].get("train", {}).get("teacher")}
    assert teachers == {"runs/teacher/seed0/best.pt"} or teachers == {"runs/teacher/seed0/last.pt"}, teachers


def test_digits_teacher_is_robust_and_natural_is_not(digits_run):
    """Machinery sanity: Fast-AT gives a teacher far more robust than natural training (same eval, eps 0.1)."""
    out, _ = digits_run
    t = json.loads((out / "evals" / "teacher-s0.json").read_text())
    n = json.loads((out / "evals" / "natural-s0.json").read_text())
    t_rob, n_rob = t["attacks"]["pgd20"]["robust_accuracy"], n["attacks"]["pgd20"]["robust_accuracy"]
    assert t["clean"]["accuracy"] > 0.8, t["clean"]
    assert t_rob > n_rob + 0.2, f"teacher PGD-20 {t_rob:.3f} vs natural {n_rob:.3f}"
    for e in (t, n):  # the evaluator's own check: every PGD input within eps and [0,1], no NaN
        valid = [c for c in e["self_checks"] if c["name"] == "adversarial_valid:pgd20"]
        assert valid and valid[0]["status"] == "ok", e["self_checks"]


def test_digits_claims_cover_every_claim_with_a_verdict(digits_run):
    out, _ = digits_run
    claims = json.loads((out / "claims.json").read_text())
    schema.validate_claims(claims)
    assert {c["id"] for c in claims} == {c.id for c in CLAIMS}
    assert all(c["verdict"] in schema.CLAIM_VERDICTS for c in claims)


def test_digits_acm_profiles_and_report(digits_run, tmp_path):
    out, results = digits_run
    assert any(r["table"] == "fig4" for r in results["results"])
    assert (out / "acm_profiles.svg").read_text().startswith("<svg")
    from reports.build import main as report_main
    html = tmp_path / "report.html"
    assert report_main(["--results", str(out), "--out", str(html)]) == 0
    text = html.read_text()
    assert "Std. Setting" in text and "not run" in text  # our cells beside the paper's; missing cells say so


def test_cifar_slice_pipeline(tmp_path, request):
    root = cifar_jpeg_root(request.config.getoption("--data-dir"))
    if root is None:
        pytest.skip("real CIFAR-10 copy not found: pass --data-dir or set MIXACM_CIFAR10_JPEG")
    results = run_plan(cifar_slice_plan(root, fraction=0.01, epochs=1), tmp_path)
    schema.validate_results(results)
    acc = {r["row"]: r["value"] for r in results["results"] if r["column"] == "Acc."}
    assert set(acc) == {"CIFAR-10 / Ours", "CIFAR-10 / Natural"}
    assert all(0.0 <= v <= 100.0 for v in acc.values())


def test_stored_evaluation_is_reused_only_for_the_same_subset_and_attacks(digits_run):
    """A resumed plan whose subset size or attacks changed (e.g. a larger AutoAttack subset) must re-evaluate."""
    from verification.runner import _cached_eval
    out, _ = digits_run
    path = out / "evals" / "natural-s0.json"
    assert _cached_eval(path, 300, ("fgsm", "pgd20")) is not None
    assert _cached_eval(path, 300, ("pgd20",)) is None
    assert _cached_eval(path, 500, ("fgsm", "pgd20")) is None
    assert _cached_eval(path, 300, ("autoattack",)) is None
    assert _cached_eval(out / "evals" / "absent.json", 300, ("pgd20",)) is None


def test_stored_evaluation_of_another_subset_is_set_aside_not_reused(digits_run, tmp_path):
    import shutil
    from verification.runner import _cached_eval
    out, _ = digits_run
    path = tmp_path / "natural-s0.json"
    shutil.copy(out / "evals" / "natural-s0.json", path)
    assert _cached_eval(path, 500, ("pgd20",), set_aside=True) is None
    assert not path.exists() and (tmp_path / "natural-s0-n300.json").is_file()


def test_record_keeps_each_runs_files_and_the_report_draws_their_training_curves(digits_run, tmp_path):
    """`python -m reports.archive` copies config/meta/summary/metrics of every run; the recorded report then
    shows training curves (the recorded cpu set predates this and says "not recorded")."""
    from reports.archive import RUN_FILES, main as archive_main
    out, _ = digits_run
    dest = tmp_path / "recorded"
    assert archive_main(["--from", str(out), "--to", str(dest), "--plan-json", '{"epochs": 2}']) == 0
    copied = sorted(p.relative_to(dest).as_posix() for p in (dest / "runs").glob("*/seed*/*"))
    assert "runs/mixacm/seed1/metrics.jsonl" in copied and "runs/teacher/seed0/meta.json" in copied, copied
    assert not any(p.endswith(".pt") for p in copied)  # no checkpoints in a record
    assert {p.rsplit("/", 1)[1] for p in copied} == set(RUN_FILES)
    for rel in copied:  # run dirs keep this machine's paths (resume needs them); the record names none
        text = (dest / rel).read_text()
        assert str(out) not in text and str(out.resolve()) not in text, rel
    summary = json.loads((dest / "runs" / "mixacm" / "seed0" / "summary.json").read_text())
    assert summary["config"]["teacher"] == "runs/teacher/seed0/last.pt", summary["config"]["teacher"]
    html = (dest / "report.html").read_text()
    fig = html.split('id="fig-training"', 1)[1].split("</figure>", 1)[0]
    assert "<svg" in fig and "not recorded" not in fig


def test_a_moved_results_dir_uses_its_own_checkpoints(digits_run, tmp_path):
    """Results copied to another place (another machine, a renamed dir) resume and aggregate from where they are:
    stored summaries name checkpoints of the place they were trained in, which may no longer exist."""
    import shutil
    out, _ = digits_run
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    results = run_plan(digits_plan(epochs=2, seeds=(0, 1), extra=False), moved, only_finished=True)
    text = (moved / "results.json").read_text()
    assert str(out) not in text and str(out.resolve()) not in text
    assert results["results"]
    from reports.archive import main as archive_main
    assert archive_main(["--from", str(moved), "--to", str(tmp_path / "rec"), "--plan-json", "{}"]) == 0
    for f in (tmp_path / "rec").rglob("*.json"):  # the run files too: they still name where they were trained
        assert str(out) not in f.read_text(), f


def test_record_leaves_out_runs_that_never_finished(digits_run, tmp_path, capsys):
    """A plan stopped mid-run (the session ended) leaves run dirs with a config and a few metric lines but no
    summary: they are not results, so the record does not carry them; it says which it left out."""
    import shutil
    out, _ = digits_run
    src = tmp_path / "src"
    shutil.copytree(out, src, ignore=shutil.ignore_patterns("*.pt"))
    half = src / "runs" / "blocks_9" / "seed2"
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")
    (half / "metrics.jsonl").write_text('{"epoch": 1}\n')
    from reports.archive import main as archive_main
    assert archive_main(["--from", str(src), "--to", str(tmp_path / "rec"), "--plan-json", "{}"]) == 0
    assert not (tmp_path / "rec" / "runs" / "blocks_9").exists()
    assert (tmp_path / "rec" / "runs" / "mixacm" / "seed0" / "summary.json").is_file()
    assert "left out unfinished run blocks_9/seed2" in capsys.readouterr().out


def test_digits_default_mixacm_runs_warn_of_no_dwarfing_term(digits_run):
    """The embedded default states alpha_acm at the paper's block widths (WRN-34-10), as the paper's students have
    them: at the literal 5000 the channel-mean ACM term on WRN-10-1 outweighed the others about 1,000x, and the
    main job's own MixACM runs warned of it (and ended at 60 +- 22 % clean)."""
    out, _ = digits_run
    acm_runs = [d for d in sorted((out / "runs").glob("*/seed*"))
                if json.loads((d / "config.json").read_text()).get("method") == "mixacm"]
    assert acm_runs
    for d in acm_runs:
        summary = json.loads((d / "summary.json").read_text())
        assert summary["config"]["alpha_acm_reference"] == "wrn-34-10", d
        dwarfs = [w for w in summary["warnings"] if "dwarfs" in w]
        assert not dwarfs, f"{d.relative_to(out)}: {dwarfs}"


def test_a_whole_split_evaluation_is_reused_on_resume(tmp_path):
    """A plan evaluating the whole test split (eval_n None) stores n = the split's size; a resumed plan must reuse
    that evaluation, not set it aside and attack every model again."""
    import torch

    from verification.runner import Plan, RunSpec, _evaluate_one

    plan = Plan(name="p", tier="smoke", base={}, runs=[], cells=[], eval_n=None)
    run = RunSpec("natural", {}, attacks=("fgsm", "pgd20"))
    stored = {"config": {"n": 50, "attacks": ["fgsm", "pgd20"]}, "marker": 1}
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "natural-s0.json").write_text(json.dumps(stored))
    test = (torch.zeros(50, 1, 8, 8), torch.zeros(50, dtype=torch.long))
    got = _evaluate_one(plan, run, 0, {"checkpoint": str(tmp_path / "absent.pt")}, tmp_path, test)
    assert got["marker"] == 1 and not list((tmp_path / "evals").glob("*-n*.json"))


def test_eta_weighs_runs_by_expected_cost(capsys):
    """Two cheap runs take 10 s each; the last run costs 8 of them: the ETA after the second says 80 s (1.3 min) for
    what remains, not the 10 s an average time per run would give."""
    from verification.runner import _Progress, expected_cost

    t = iter([0.0, 0.0, 10.0, 20.0])  # construction, then each run start
    p = _Progress("p", [1.0, 1.0, 8.0], clock=lambda: next(t))
    for i in range(2):
        p.next(f"run{i}", cached=False)
    p.next("big", cached=False)
    lines = capsys.readouterr().out.splitlines()
    assert "ETA" not in lines[0] and lines[1].endswith("ETA 1.5 min") and lines[2].endswith("ETA 1.3 min"), lines
    assert expected_cost({"method": "pgd_at", "model": "wrn-16-1", "epochs": 3}) > \
        4 * expected_cost({"method": "mixacm", "model": "wrn-16-1", "epochs": 3})


def test_eps_is_printed_as_configured():
    from verification.runner import eps_text

    assert eps_text(8 / 255) == "8/255" and eps_text(0.1) == "0.1" and eps_text(2 / 255) == "2/255"
    assert eps_text(0.031373) == "8/255"  # a record's setting keeps 6 decimals
    assert eps_text(0.0314) == "0.0314"  # typed as a decimal: not 8/255
