"""theory.html reads like a paper's appendix: every claim's statement typeset as MathML, its numbers printed to the
digits that show its margin, the figures its evidence implies (or a note when matplotlib is missing), the raw
evidence folded away and free of Python syntax, and the commit read by mixacm.gitinfo."""
from __future__ import annotations

import json
import math
import re
import sys
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import page, report

EXPECTED = json.loads((Path(report.__file__).parent / "expected_verdicts.json").read_text())["claims"]
RECORDED = Path(__file__).resolve().parents[2] / "reports" / "recorded" / "cpu" / "theory.json"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """A quick run written the way ``python -m theory --quick`` writes it: (result as in theory.json, page)."""
    out = tmp_path_factory.mktemp("theory")
    pj, ph = report.write(report.run_all(report.MODULES, quick=True), out)
    return json.loads(pj.read_text()), ph.read_text()


def _without(html: str, *tags: str) -> str:
    for t in tags:
        html = re.sub(rf"<{t}\b.*?</{t}>", " ", html, flags=re.S)
    return html


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def _articles(html: str) -> dict[str, str]:
    """claim id -> the HTML of its <article>."""
    out = {}
    for m in re.finditer(r'<article class="claim".*?</article>', html, flags=re.S):
        cid = re.search(r"</span><code>([^<]+)</code>", m.group(0)).group(1)
        out[cid] = m.group(0)
    return out


# ------------------------------------------------------------------------------------------------ margin_digits
def test_margin_digits_shows_the_margin_of_close_sides():
    lhs, rhs, margin = 2.068319570723716, 2.068111559559393, -0.0002080111643230076
    lo, hi, mg = page.margin_digits(lhs, rhs, margin)
    assert (lo, hi, mg) == ("2.068320", "2.068112", "-0.000208")
    assert Decimal(hi) - Decimal(lo) == Decimal(mg)


def test_margin_digits_far_apart_and_degenerate():
    # at 4 decimals the printed sides would differ by 0.5235 while the margin rounds to 0.5234: one more digit
    assert page.margin_digits(0.08111617689105247, 0.6045651513104439) == ("0.08112", "0.60457", "0.52345")
    assert page.margin_digits(1.5, 1.5) == ("1.500", "1.500", "0.000")
    assert page.margin_digits(None, 1.0)[0] == "–"  # missing side: no invented digits
    assert page.margin_digits(float("nan"), 1.0) == ("nan", "1", "–")
    lo, hi, mg = page.margin_digits(2.0, 2.0, 1e-30)  # a margin below float64 resolution of the sides: no error
    assert Decimal(hi) - Decimal(lo) == Decimal(mg) == 0


@settings(max_examples=300, deadline=None)
@given(st.floats(-1e4, 1e4, allow_nan=False), st.floats(-1e4, 1e4, allow_nan=False),
       st.integers(0, 12))
def test_margin_digits_printed_sides_differ_by_the_printed_margin(lhs, rhs, k):
    rhs = lhs + (rhs - lhs) * 10.0 ** -k  # close sides as often as far ones
    lo, hi, mg = page.margin_digits(lhs, rhs)
    assert Decimal(hi) - Decimal(lo) == Decimal(mg)
    m = rhs - lhs
    if m != 0 and abs(m) > 1e-13 * max(abs(lhs), abs(rhs), 1e-300):  # a margin float64 actually resolves
        assert math.copysign(1, float(mg)) == math.copysign(1, m)
        assert abs(float(mg) - m) <= 0.006 * abs(m)  # three significant digits, correctly rounded or one unit off
        assert len(mg.lstrip("-0.").replace(".", "")) >= 3


def test_fmt_num_has_no_python_none():
    assert page.fmt_num(None) == "–" and page.fmt_num(True) == "yes" and page.fmt_num(1.25e-16) == "1.250e-16"
    assert str(page.num_html(-2.5e-7)) == "−2.500×10<sup>−7</sup>"


# ------------------------------------------------------------------------------------------------------- MathML
def test_every_declared_claim_has_math_that_is_well_formed_mathml():
    for cid in EXPECTED:
        assert cid in page.STATEMENTS, f"{cid}: no entry in theory.page.STATEMENTS"
        tex, prose = page.STATEMENTS[cid]
        root = ET.fromstring(page.tex_to_mathml(tex, display=True))
        assert root.tag == "math" and root.get("display") == "block"
        assert root.find("semantics/annotation").text == tex
        if callable(prose):
            prose = prose({"R": 6, "regime": {"n": 1024}})
        ET.fromstring(f"<p>{page.prose_html(prose)}</p>")


def test_tex_subset_converter():
    m = page.tex_to_mathml(r"\frac{a}{b} \le \mathbb{E}_{\tilde{P}}[1-\lambda]")
    assert "<mfrac><mi>a</mi><mi>b</mi></mfrac>" in m and "<mo>≤</mo>" in m and "𝔼" in m and "<mi>λ</mi>" in m
    assert '<mo stretchy="false">[</mo>' in m  # a bare bracket keeps its size, as in TeX
    assert '<munder><mo movablelimits="true">max</mo>' in page.tex_to_mathml(r"\max_{k \ne y} z_k")
    for bad in (r"\undefinedmacro x", r"x^", r"{x", r"\mathbb{Q}"):
        with pytest.raises(ValueError):
            page.tex_to_mathml(bad)


def test_ascii_notation_becomes_text_without_braces():
    html = str(page.pretty("theta^T E_{P_n}[x] <= eps sqrt(d); see claims thm42.logistic.{taylor,exact-l2} and "
                             "no_confidence_term", ids={"thm42.logistic.taylor"}))
    assert "θ<sup>⊤</sup>" in html and "E<sub>P<sub>n</sub></sub>" in html and "≤ ε √(d)" in html
    assert '<a href="#ev-thm42-logistic-taylor"><code>thm42.logistic.taylor</code></a>' in html
    assert "<code>thm42.logistic.exact-l2</code>" in html and "<code>no_confidence_term</code>" in html
    assert "{" not in _text(html) and "}" not in _text(html)


# ---------------------------------------------------------------------------------------------------- the page
def _check_page(result: dict, html: str) -> None:
    arts = _articles(html)
    assert sorted(arts) == sorted(c["id"] for c in result["claims"])
    for cid, art in arts.items():
        if cid in page.STATEMENTS:
            assert '<math display="block">' in art, f"{cid}: statement not typeset"
        assert re.search(r'<span class="badge"[^>]*>[a-z-]+</span>', art), f"{cid}: no verdict badge"
        assert re.search(r'<details class="raw">\s*<summary>Evidence', art), f"{cid}: evidence not folded"
    assert not re.search(r"<details[^>]*\bopen\b", html), "evidence must start collapsed"
    text = _text(_without(html, "style"))
    for bad in (r"\bNone\b", r"\bTrue\b", r"\bFalse\b", "`", r"[{\[(]\s*['\"]\w", r"\w['\"]:\s", "&#34;", "&quot;"):
        assert not re.search(bad, text), (bad, re.search(rf".{{60}}{bad}.{{60}}", text, flags=re.S))
    outside = _text(_without(html, "style", "details", "math", "svg"))
    for brace in "{}":
        i = outside.find(brace)
        assert i < 0, f"{brace!r} outside <details>: ...{outside[max(0, i - 80):i + 80]}..."
    for m in re.finditer(r"<math\b.*?</math>", html, flags=re.S):
        ET.fromstring(m.group(0))


def test_quick_page_reads_like_an_appendix(quick):
    result, html = quick
    _check_page(result, html)
    by = _articles(html)
    art = by["thm42.logistic.taylor"]  # the close counterexample prints the digits that show its margin
    assert "2.068320" in art and "2.068112" in art and "−0.000208" in art
    for v in {c["verdict"] for c in result["claims"]}:  # the tally counts every verdict
        n = sum(c["verdict"] == v for c in result["claims"])
        assert f">{n} {v}</span>" in html, v
    assert str(report.commit_label(report.ROOT))[:12] in html


@pytest.mark.skipif(not RECORDED.is_file(), reason="recorded theory.json missing")
def test_recorded_full_run_page_is_clean():
    res = json.loads(RECORDED.read_text())
    _check_page(res, page.render_html(res))


def test_figures_present_when_matplotlib_is_importable(quick):
    pytest.importorskip("matplotlib")
    result, html = quick
    arts = _articles(html)
    drawn = [cid for cid in page.FIGURES if cid in arts]
    assert drawn, "the quick run carries the data of at least one figure"
    for cid in drawn:
        assert '<svg class="fig"' in arts[cid] and "<figcaption>" in arts[cid], cid
        assert "<?xml" not in arts[cid] and "<metadata" not in arts[cid]
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "duplicate element ids between inline figures"


def test_page_renders_without_matplotlib_and_says_so(quick, monkeypatch):
    result, _ = quick
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    html = page.render_html(result)
    _check_page(result, html)
    assert "<svg" not in html
    n = sum(cid in {c["id"] for c in result["claims"]} for cid in page.FIGURES)
    assert html.count("is not drawn: matplotlib is not installed in this environment") == n >= 1


def test_commit_line_reads_mixacm_gitinfo():
    from mixacm import gitinfo

    html = page.render_html({"claims": [], "errata": [], "provenance": {}})  # results without a commit
    assert gitinfo.commit_label(report.ROOT).removesuffix("+dirty")[:12] in html and "read at rendering" in html
    prov = {"git_commit": "0123456789abcdef0123456789abcdef01234567+dirty",
            "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": True}}
    html = page.render_html({"claims": [], "errata": [], "provenance": prov})
    assert "<code title=\"0123456789abcdef0123456789abcdef01234567\">0123456789ab</code>" in html
    assert "tracked files modified" in html and "of the run" in html
