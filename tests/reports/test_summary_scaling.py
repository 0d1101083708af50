"""The epoch-scaling prose is generated from scaling.json: its trend word follows the slope's interval, and the
teacher-ceiling sentence appears only when PGD-7 AT students outgrow the teacher."""
from __future__ import annotations

from reports.summary import scaling_markdown


def _scaling(robust_ci, at_ratios, mix_ratios):
    rows = []
    for e, a, m in zip((3, 6), at_ratios, mix_ratios):
        gap = {"delta": -5.0, "ci95": [-6.0, -4.0]}
        rows.append({"epochs": e, "clean": gap, "robust": gap, "at_fraction_of_teacher": a,
                     "mixacm_fraction_of_teacher": m})
    slope = {"slope": sum(robust_ci) / 2, "ci95": list(robust_ci), "method": "wls"}
    return {"test": "paired", "teacher_robust": 25.0, "epochs": [3, 6], "rows": rows,
            "slope": {"clean": slope, "robust": slope}}


def test_trend_word_follows_the_interval():
    assert "widens" in "\n".join(scaling_markdown(_scaling((-1.4, -0.5), (0.9, 0.95), (0.7, 0.8))))
    assert "narrows" in "\n".join(scaling_markdown(_scaling((0.5, 1.4), (0.9, 0.95), (0.7, 0.8))))
    text = "\n".join(scaling_markdown(_scaling((-0.5, 0.4), (0.9, 0.95), (0.7, 0.8))))
    assert "no trend" in text and "widens" not in text and "narrows" not in text


def test_teacher_ceiling_only_when_at_outgrows_the_teacher():
    above = "\n".join(scaling_markdown(_scaling((-1.4, -0.5), (0.95, 1.16), (0.7, 0.81))))
    assert "exceed the teacher" in above and "from 6 epochs" in above and "1.16" in above and "0.81" in above
    below = "\n".join(scaling_markdown(_scaling((-1.4, -0.5), (0.9, 0.95), (0.7, 0.8))))
    assert "exceed the teacher" not in below


def test_report_renders_the_recorded_scaling_study(tmp_path):
    import json
    from pathlib import Path

    import markupsafe

    from reports.build import build, scaling_reading

    d = Path(__file__).resolve().parents[2] / "reports" / "recorded" / "cpu-epoch-scaling"
    page = build([str(d)], None, tmp_path / "r.html").read_text()
    s = json.loads((d / "scaling.json").read_text())
    assert 'id="scaling"' in page
    for row in s["rows"]:
        assert f"{row['robust']['delta']:+.2f}" in page
    assert str(markupsafe.escape(scaling_reading(s))) in page
