"""theory.html: the deciding number of each claim in words, evidence and counterexamples as tables (no raw JSON),
and the theory tier stays torch- and matplotlib-free at import time."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from theory import page

RECORDED = Path(__file__).resolve().parents[2] / "reports" / "recorded" / "cpu" / "theory.json"


def test_imports_no_torch_or_matplotlib():
    code = "import sys, theory.report, theory.__main__; print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr[-1000:]


@pytest.mark.skipif(not RECORDED.is_file(), reason="recorded theory.json missing")
def test_recorded_theory_html_readable():
    res = json.loads(RECORDED.read_text())
    html = page.render_html(res)
    by = {c["id"]: page.deciding_number(c) for c in res["claims"]}
    assert by["thm41.bound.printed"].startswith("min certified margin 0.4"), by["thm41.bound.printed"]
    assert by["thm42.relu.taylor.biased-centred"].startswith("violations 5/25")
    assert by["thm42.logistic.taylor"].startswith("margin -0.04892")
    text = re.sub(r"<style.*?</style>", "", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    for bad in ("&#34;", "&quot;", '{"', "`"):
        assert bad not in text, bad
    assert "<pre" not in html  # evidence is shown as tables, not as JSON in a pre block


def test_thm41_key_number_is_the_min_certified_margin():
    """A fresh Thm 4.1 claim (two runs of the default regime) shows its smallest certified margin, the violations and
    the power in the table and the HTML, not the word 'vacuous'."""
    from theory import thm41

    rows, _ = thm41.monte_carlo(thm41.REGIME, R=2)
    verdict, ev = thm41.decide(rows, "standard", thm41.REGIME)
    claim = {"id": "thm41.bound.standard", "statement": "s", "source": "Supp. B.1", "verdict": verdict, "evidence": ev}
    txt = page.deciding_number(claim)
    assert verdict == "holds-certified"
    assert txt.startswith(f"min certified margin {ev['min_certified_margin']:.4g} (violations 0/2, detectable deficit")
    assert page.key_number(claim) == f"min_certified_margin={ev['min_certified_margin']:.4g}"
    html = page.render_html({"claims": [claim], "errata": [], "provenance": {}})
    assert "min certified margin" in html and "vacuous" not in txt
