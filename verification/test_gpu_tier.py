"""gpu tier: every paper cell with a spec, trained and evaluated at the paper's settings through the one experiment
runner (``verification.runner.run_plan`` on ``verification.plans.gpu_plan``), then compared with the cell's
tolerance. Resumable: runs and evaluations are kept under --results-dir (default reports/out/gpu), whose
results.json / claims.json follow verification.schema; the last test renders the report from them.

    pytest verification/ --gpu                      # all runnable cells, on CUDA
    pytest verification/ --gpu -k 'table3:'         # one table (the trailing colon keeps table1 from table10)
    pytest verification/ --gpu --plan -k 'table3:'  # what it would run and cost, without training
    pytest verification/ --gpu --rehearse           # every cell through the same code at toy amounts, any device

The first tests (unmarked, default tier) check that every paper cell has a spec and every spec builds a valid
training config whose names (method, model, dataset, teacher) resolve.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from verification import compare, paper_data, specs

ALL = specs.all_specs()
RUNNABLE = [s for s in ALL if not s["blocked"]]


def test_every_cell_has_a_spec():
    assert len(ALL) == len(paper_data.all_cells())
    for s in ALL:
        assert s["kind"] in ("train_eval", "param_ratio")
        assert s["blocked"] or s["kind"] == "param_ratio" or (s["train"] and s["eval"]), s["id"]


def test_specs_are_valid_train_configs():
    """Built the way the tier builds them (types coerced, names resolved), not only key names."""
    from mixacm.attacks import parse_attack, parse_eps
    from mixacm.config import TrainConfig
    from mixacm.train import check_names

    for s in RUNNABLE:
        if s["kind"] != "train_eval":
            continue
        cfg = TrainConfig(**s["train"])
        assert isinstance(cfg.eps, float) and isinstance(cfg.attack_step, float), s["id"]
        check_names(cfg)
        for a in s["eval"]["attacks"]:
            parse_attack(a)
        parse_eps(s["eval"]["eps"])
        if cfg.teacher is not None:
            from mixacm.teachers import ROBUSTBENCH_TEACHERS
            name = cfg.teacher.removeprefix("robustbench:")
            assert not cfg.teacher.startswith("robustbench:") or name in ROBUSTBENCH_TEACHERS, s["id"]


def test_selected_checkpoints_match_the_configs():
    """One rule for the specs and configs/table*: robust methods select by held-out PGD accuracy, natural by clean;
    direct feature L2 at weight 1 (it diverges at 5000)."""
    from mixacm.config import load_config

    root = Path(__file__).resolve().parents[1] / "configs"
    for path in sorted(root.glob("table*/*.toml")):
        cfg = load_config(path)
        want = "val_acc" if cfg.method == "natural" else "val_rob"
        assert cfg.select_metric == want, f"{path}: select_metric={cfg.select_metric!r}, specs use {want!r}"
        if cfg.feature_loss == "direct":
            assert cfg.alpha_acm == specs.DIRECT_L2_ALPHA, f"{path}: alpha_acm={cfg.alpha_acm}"
    for s in RUNNABLE:
        if s["kind"] == "train_eval":
            want = "val_acc" if s["train"]["method"] == "natural" else "val_rob"
            assert s["train"]["select_metric"] == want, s["id"]
            if s["train"].get("feature_loss") == "direct":
                assert s["train"]["alpha_acm"] == specs.DIRECT_L2_ALPHA, s["id"]


def _param(spec):
    marks = [pytest.mark.gpu]
    if spec["erratum"]:
        marks.append(pytest.mark.xfail(reason=f"paper erratum: {spec['erratum']}", strict=True))
    return pytest.param(spec, id=spec["id"], marks=marks)


@pytest.mark.parametrize("spec", [_param(s) for s in RUNNABLE])
def test_paper_cell(spec, gpu_tier):
    """The cell's record (mean over its seeds) within the cell's tolerance; in a rehearsal, a comparison that
    explains itself (random teachers at toy amounts are not expected to match)."""
    record = gpu_tier.record(spec)
    cell = paper_data.find_cell(spec["table"], spec["row"], spec["column"])
    if gpu_tier.rehearse and spec["kind"] != "param_ratio":  # size ratios are exact at any scale: compared
        cmp = compare.compare(record, cell)
        assert "expected" in cmp.message and "tolerance" in cmp.message and cmp.got == record["value"]
        assert record["n_runs"] == len(record["runs"]) >= 1
        return
    compare.assert_matches(record, cell)


@pytest.mark.gpu
def test_report_renders(gpu_tier, tmp_path):
    """The last step of the tier: the HTML report from its results.json and claims.json."""
    from reports.build import build

    out = build([str(gpu_tier.out / "results.json")], None, tmp_path / "report.html")
    html = out.read_text()
    assert "<table" in html and len(gpu_tier.results["results"]) > 0


def test_baseline_configs_agree_with_the_specs():
    """configs/table1/cifar10_<method>.toml of each compared method = the spec's training config (one source)."""
    from mixacm.config import load_config

    root = Path(__file__).resolve().parents[1] / "configs" / "table1"
    seen = set()
    for s in RUNNABLE:
        if s["table"] != "table1" or s["kind"] != "train_eval":
            continue
        method = paper_data.find_cell(s["table"], s["row"], s["column"])["setting"]["method"]
        if method not in specs.METHOD_CONFIG or method.startswith(("mixacm", "kd")) or method in seen:
            continue
        seen.add(method)
        path = root / f"cifar10_{method}.toml"
        assert path.is_file(), f"{s['id']}: no config {path}"
        got, want = load_config(path), load_config(None, s["train"])
        assert got == want, f"{path} differs from the spec of {s['id']}"
    assert seen >= {"trades", "mart", "awp", "fat", "free_at", "at_early_stop", "bot_trades"}, seen
