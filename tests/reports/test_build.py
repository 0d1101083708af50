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
    assert {"claims", "fig3", "fig4", "fig7", "choices", "theory", "provenance"} <= ids
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
