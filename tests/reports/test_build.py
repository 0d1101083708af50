"""Smoke: the report renders with no results and with synthetic results; every table is present; 'not run' shown."""
from __future__ import annotations

import json
import re

import pytest

from reports import build
from verification import paper_data
from verification.schema import make_record, provenance

pytestmark = pytest.mark.smoke


def _ids(page: str) -> set[str]:
    return set(re.findall(r'id="([^"]+)"', page))


def test_renders_without_results(tmp_path):
    out = build.build([], tmp_path / "missing-theory.json", tmp_path / "r.html")
    page = out.read_text()
    ids = _ids(page)
    for t in paper_data.TABLES:
        assert t in ids
    assert {"claims", "choices", "theory", "provenance"} <= ids
    # no figure is drawn without data: each is named once in the line of figures not drawn
    assert not {"fig3", "fig4", "fig7"} & ids
    assert re.search(r"Not drawn \(these results hold nothing to draw for them\)[^<]*Fig\. 3", page)
    # every paper cell is shown as not run (or as having no paper value), never blank
    n_cells = len(paper_data.all_cells())
    assert page.count(">not run</span>") + page.count(">no paper value</span>") >= n_cells
    assert "56.65" in page and "0.93" in page  # a paper value with its std


def test_renders_synthetic_results(tmp_path):
    cell = paper_data.find_cell("table3", "CIFAR-10 / Ours", "PGD 20")  # 48.09
    bad = paper_data.find_cell("table3", "CIFAR-10 / Ours", "Acc.")  # 89.93
    scaled = paper_data.find_cell("table3", "CIFAR-10 / Natural", "Acc.")
    recs = [make_record(cell["table"], cell["row"], cell["column"], cell["setting"],
                        [47.5, 48.5, 48.0], [0, 1, 2], {"method": "mixacm"}, 12.0),
            make_record(scaled["table"], scaled["row"], scaled["column"], {**scaled["setting"], "scale": "cpu: tiny"},
                        [40.0, 41.0], [0, 1], {}, 1.0),
            make_record(bad["table"], bad["row"], bad["column"], bad["setting"], [70.0, 71.0], [0, 1], {}, 1.0),
            make_record("fig3", "mixacm", "robust", {"data_fraction": 0.3}, [30, 31], [0, 1]),
            make_record("fig3", "mixacm", "robust", {"data_fraction": 1.0}, [35, 36], [0, 1]),
            make_record("bench", "natural", "step_time_s", {}, [0.1, 0.11], [0, 1]),
            make_record("bench", "pgd7_at", "step_time_s", {}, [0.7, 0.72], [0, 1]),
            make_record("choices", "mixacm_post", "robust", {"choice": "feature_point=post"}, [16.8, 17.2], [0, 1])]
    res = {"provenance": provenance("smoke", "2024-01-01T00:00:00+00:00", 3.0), "results": recs}
    (tmp_path / "res").mkdir()
    (tmp_path / "res" / "results.json").write_text(json.dumps(res))
    (tmp_path / "res" / "acm.json").write_text(json.dumps({"acm_profiles": {"block 3": {
        "teacher": [0.1, 0.5, 0.2], "student": [0.2, 0.4, 0.1], "natural": [1, 1, 1]}}}))
    theory = tmp_path / "theory.json"
    theory.write_text(json.dumps({"claims": [{"id": "thm42.x", "statement": "s", "source": "B.2",
                                              "verdict": "holds-exact"}],
                                  "errata": [{"location": "B.1", "text_says": "l1", "correct": "linf", "evidence": "e"}]}))
    page = build.build([str(tmp_path / "res")], theory, tmp_path / "r.html").read_text()
    assert "48.00 ± 0.50 (n=3)" in page and "-0.09" in page and ">pass</span>" in page
    assert ">fail</span>" in page and "-19.43" in page
    assert ">scaled</span>" in page and "cpu: tiny" in page  # scaled-down runs are not held to the paper tolerance
    assert page.count("<svg") >= 2  # fig3 curve and the ACM profile
    assert "thm42.x" in page and "linf" in page
    assert "2024-01-01" in page and "6.76×" in page  # 0.71 s / 0.105 s
    assert "feature_point=post" in page and "17.00 ± 0.28 (n=2)" in page  # the implementation-choice evidence


def test_invalid_results_file_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"provenance": {}, "results": []}))
    with pytest.raises(ValueError, match="bad.json"):
        build.build([str(bad)], None, tmp_path / "r.html")


def test_cli_main(tmp_path, capsys):
    from verification import schema

    rec = schema.make_record("table6", "Accuracy", "Std. Setting", {k: None for k in schema.SETTING_KEYS},
                             [50.0, 52.0], [0, 1], {}, 1.0)
    res = tmp_path / "res" / "results.json"
    res.parent.mkdir()
    res.write_text(json.dumps({"provenance": schema.provenance("smoke", "2024-01-01", 1.0), "results": [rec]}))
    assert build.main(["--results", str(res.parent), "--out", str(tmp_path / "x.html"),
                       "--theory", str(tmp_path / "none.json")]) == 0
    assert (tmp_path / "x.html").exists() and "report written" in capsys.readouterr().out


@pytest.mark.parametrize("args,says", [
    ([], "no --results given"),
    (["--results", "{empty}"], "no results"),  # a run dir or evaluation output: nothing to report
    (["--results", "{missing}"], "no such file"),
    (["--results", "{empty}", "--out", "{file}/r.html"], "is a file, not a directory"),
])
def test_cli_refuses_with_one_line(tmp_path, capsys, args, says):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "summary.json").write_text("{}")
    (tmp_path / "file").write_text("x")
    fill = {"empty": tmp_path / "empty", "missing": tmp_path / "missing", "file": tmp_path / "file"}
    argv = [a.format(**fill) for a in args]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "r.html")]
    assert build.main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1
    assert not (tmp_path / "r.html").exists()


def test_training_warnings_reach_the_top_of_the_report_and_name_their_run(tmp_path):
    """A run that collapsed to chance (summary.json "warnings") is named in the box at the top, beside the
    evaluator's flags; the green "no flags or warnings" box never hides it."""
    cell = paper_data.find_cell("table3", "CIFAR-10 / Ours", "PGD 20")
    rec = make_record(cell["table"], cell["row"], cell["column"], {**cell["setting"], "run": "mixacm_frac10"},
                      [10.0, 11.0], [0, 1], {}, 1.0)
    (tmp_path / "results.json").write_text(json.dumps({"provenance": provenance("smoke", "2026-01-01", 1.0),
                                                       "results": [rec]}))
    run = tmp_path / "runs" / "mixacm_frac10" / "seed1"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"warnings": ["collapsed to chance: held-out accuracy 0.100"]}))
    ev = tmp_path / "evals"
    ev.mkdir()
    (ev / "mixacm_frac10-s1.json").write_text(json.dumps({"schema": "mixacm.evaluate/1", "n_eval": 10,
                                                          "config": {"attacks": ["pgd20"]}, "self_checks": [],
                                                          "warnings": []}))
    page = build.build([str(tmp_path)], None, tmp_path / "r.html").read_text()
    top = page[:page.index('id="figures"')]
    assert "no flags or warnings" not in top
    assert "mixacm_frac10 seed 1" in top and "collapsed to chance" in top


def test_scatter_labels_never_overlap_and_families_keep_their_colours():
    """17 runs crowded in one corner (the demo's case): every label that is drawn has a box (matplotlib's own, after
    drawing) overlapping no other label; the rest are named in a note. Colours follow the method family."""
    import itertools

    import matplotlib.pyplot as plt

    from reports import figures as F

    runs = ["mixacm", "wo_kd", "wo_mixup", "only_acm", "only_kd", "natural", "pgd_at", "trades", "mart", "awp",
            "blocks_2", "blocks_3", "blocks_4", "direct_l2", "teacher_avgpool", "mixacm_frac10", "teacher"]
    pts = [{"label": r, "clean": 90 + 0.1 * i, "robust": 60 + 0.1 * (i % 4), "method": None} for i, r in enumerate(runs)]
    fig = F.scatter_figure(pts, eval_note="PGD-20")
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    labels = [t for t in fig.axes[0].texts if t.get_text() in runs]
    assert len(labels) >= 5
    for a, b in itertools.combinations(labels, 2):
        assert not a.get_window_extent(r).overlaps(b.get_window_extent(r)), (a.get_text(), b.get_text())
    note = [t.get_text() for t in fig.axes[0].texts if t.get_text().startswith("unlabelled")]
    assert len(labels) + (len(note[0].split(",")) if note else 0) == len(runs)
    plt.close(fig)
    st = F.run_styles([(r, None) for r in runs])
    assert st["pgd_at"]["family"] == st["trades"]["family"] == "at" and st["natural"]["family"] == "natural"
    assert st["teacher"]["colour"] == "#000000" and st["only_kd"]["family"] == "kd"
    assert len({(v["colour"], v["style"]) for v in st.values()}) == len(runs)  # no two runs look alike


def test_scatter_labels_never_cover_the_legend():
    """A point in the legend's corner (upper left): its label goes elsewhere or is left out, never over the legend."""
    import matplotlib.pyplot as plt

    from reports import figures as F

    pts = [{"label": "pgd_at", "clean": 30.0, "robust": 24.0, "method": "pgd_at"},
           {"label": "teacher", "clean": 31.0, "robust": 25.0, "method": "teacher"},
           {"label": "mixacm", "clean": 60.0, "robust": 15.0, "method": "mixacm"},
           {"label": "natural", "clean": 80.0, "robust": 0.5, "method": "natural"}]
    fig = F.scatter_figure(pts, eval_note="PGD-20")
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    legend = fig.axes[0].get_legend().get_window_extent(r)
    labels = [t for t in fig.axes[0].texts if t.get_text() in {p["label"] for p in pts}]
    assert labels
    for t in labels:
        assert not t.get_window_extent(r).overlaps(legend), t.get_text()
    plt.close(fig)


def test_ablation_panels_only_for_tables_the_set_ran(tmp_path):
    """A set that ran MixACM and the Table 7 blocks, but no Table 6 or 9 ablation, draws the Table 7 panel only
    (MixACM alone fills one bar of each table: not a comparison)."""
    recs = []
    for row, col, runs in [("Accuracy", "Std. Setting", [90.0, 91.0]), ("Robustness", "Std. Setting", [50.0, 51.0])]:
        recs.append(make_record("table6", row, col, {"run": "mixacm", "attack": "clean" if row == "Accuracy" else
                                                     "pgd20"}, runs, [0, 1]))
    for row in ("Low-Level (2)", "All Features"):
        recs += [make_record("table7", row, "Accuracy", {"run": row, "attack": "clean"}, [80.0, 81.0], [0, 1]),
                 make_record("table7", row, "Robustness", {"run": row, "attack": "pgd20"}, [40.0, 41.0], [0, 1])]
    recs.append(make_record("table9", "teacher Adaptive Max Pool / student None", "Robustness",
                            {"run": "mixacm", "attack": "pgd20"}, [50.0, 51.0], [0, 1]))
    (tmp_path / "results.json").write_text(json.dumps({"provenance": provenance("smoke", "2026-01-01", 1.0),
                                                       "results": recs}))
    page = build.build([str(tmp_path)], None, tmp_path / "r.html").read_text()
    fig = page[page.index('id="fig-ablations"'):]
    fig = fig[:fig.index("</figure>")]
    assert "Table 7: blocks" in fig and "Table 6: components" not in fig and "Table 9: transforms" not in fig


def test_autoattack_figure_compares_on_the_same_images_where_masks_allow(tmp_path):
    """The recorded paired set keeps PGD masks on all 10,000 images and AutoAttack on 500 of them: the figure pairs
    each model on the AutoAttack images; a set without masks says its bars need not cover the same images."""
    from pathlib import Path

    from reports import build

    root = Path(__file__).resolve().parents[2] / "reports" / "recorded"
    page = build.build([str(root / "cpu-ablations-paired")], None, tmp_path / "a.html").read_text()
    assert "AutoAttack vs PGD per model, on the same images" in page and "same 500 test images" in page
    page = build.build([str(root / "cpu")], None, tmp_path / "b.html").read_text()
    assert "need not cover the same images" in page


def test_setting_lists_students_not_the_teacher_and_names_a_method_trained_for_other_epochs():
    """The teacher's architecture, method and epochs belong to the teacher row, not to "students"; a method trained
    for a different number of epochs (Free-AT's passes, each replayed m times) is named beside its epochs."""
    def rec(table, row, method, model, epochs):
        return make_record(table, row, "Clean Acc.", {"dataset": "digits", "student": model, "method": method},
                           [90.0, 91.0], [0, 1], {"train": {"method": method, "model": model, "epochs": epochs}})
    recs = [rec("table1", "Ours (w/ Mixup)", "mixacm", "wrn-10-1", 6), rec("table1", "Natural", "natural", "wrn-10-1", 6),
            rec("table1", "Free AT", "free_at", "wrn-10-1", 1), rec("teacher", "Fast-AT teacher", "fast_at", "wrn-10-2", 10)]
    rows = {r["what"]: r["value"] for r in build.setting_view([], recs, {}, {})}
    assert rows["students"] == "wrn-10-1"
    assert rows["methods"] == "free_at, mixacm, natural"
    assert rows["student epochs"] == "6 (free_at: 1)"
    rows = {r["what"]: r["value"] for r in build.setting_view([], recs[:2] + recs[3:], {}, {})}
    assert rows["student epochs"] == "6"


def test_no_empty_claims_table_when_the_set_ran_no_claim(tmp_path):
    """A set whose records feed no claim shows the "not run in this set" line, not a claims table with a header and
    no rows."""
    recs = [make_record("table1", "Natural", "Clean Acc.", {"dataset": "digits", "student": "wrn-10-1",
                                                            "method": "natural"}, [90.0, 91.0], [0, 1])]
    (tmp_path / "res").mkdir()
    (tmp_path / "res" / "results.json").write_text(json.dumps(
        {"provenance": provenance("smoke", "2024-01-01T00:00:00+00:00", 3.0), "results": recs}))
    page = build.build([str(tmp_path / "res")], None, tmp_path / "r.html").read_text()
    assert "Not run in this set" in page and "claim (ours: condition tested)" not in page
