"""Every page the project generates, loaded in headless Chromium at 1400 px: each recorded set's report, the
cross-set index, the theory page and the report of `mixacm demo --quick`, each screenshotted (top 1,000 px and its first figure) into the test's own
folder. A page fails on text overflowing its container, overlapping text in a figure (the drawn <text> boxes), literal
markup in visible text (backticks, Python reprs, a bare None / ? / nan), or a figure drawn without data.

Skips (with the reason) when /usr/bin/chromium is absent; CI installs Debian's chromium via .ci/run.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reports import build, summary

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "reports" / "recorded"
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDTH = 1400

# Runs after layout; writes its findings as JSON into <pre id="probe"> for --dump-dom.
PROBE = """<script>
window.addEventListener('load', () => {
  const out = {overflow: [], overlap: [], markup: [], empty: [], width: document.documentElement.scrollWidth};
  const visible = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const inDetails = el => el.closest('details') !== null;
  // text wider than its box: a cell, caption or paragraph whose content does not fit and is not scrollable
  for (const el of document.querySelectorAll('td, th, p, figcaption, li, h1, h2, h3, div, span, a, b')) {
    if (!visible(el) || inDetails(el) || el.closest('svg')) continue;
    const cs = getComputedStyle(el);
    if (cs.overflowX !== 'visible' || cs.display === 'inline') continue;
    if (el.scrollWidth > el.clientWidth + 2 && el.textContent.trim())
      out.overflow.push(el.tagName + ': ' + el.textContent.trim().slice(0, 80));
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 2)
    out.overflow.push('page: ' + document.documentElement.scrollWidth + ' px wide in a ' + window.innerWidth + ' px window');
  // overlapping text inside each figure
  for (const svg of document.querySelectorAll('figure svg')) {
    const boxes = [...svg.querySelectorAll('text')].filter(visible).map(t => [t.textContent, t.getBoundingClientRect()]);
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const [ta, a] = boxes[i], [tb, b] = boxes[j];
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 1 && h > 1) out.overlap.push(svg.closest('figure').id + ': "' + ta + '" / "' + tb + '"');
    }
  }
  // literal markup in the visible text (folded evidence in <details> and <code>/<pre> blocks excepted)
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const bad = [/`/, /\\{'/, /'\\}/, /\\[None/, /None\\]/, /\\(default: None\\)/, /^\\s*(None|\\?|nan|NaN|undefined|null)\\s*$/];
  let node;
  while ((node = walker.nextNode())) {
    const el = node.parentElement;
    if (!el || el.closest('details, code, pre, script, style, svg') || !visible(el)) continue;
    for (const re of bad) if (re.test(node.textContent)) { out.markup.push(node.textContent.trim().slice(0, 80)); break; }
  }
  // a figure must draw something: an svg with paths, never a placeholder
  for (const f of document.querySelectorAll('figure')) {
    const svg = f.querySelector('svg');
    const drawn = el => { const r = el.getBoundingClientRect(); return r.width > 0 || r.height > 0; };
    const paths = svg ? [...svg.querySelectorAll('path, use, line, polyline, rect')].filter(drawn).length : 0;
    if (!svg || paths < 5) out.empty.push(f.id || '(figure without id)');
  }
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _pages(tmp: Path) -> dict[str, Path]:
    pages = {}
    for d in summary.recorded_sets():
        pages[f"recorded/{d.name}"] = build.build([str(d)], None, tmp / d.name / "report.html")
    index = tmp / "index.html"
    index.write_text(build.render_index(summary.index_data()))
    pages["recorded/index"] = index
    # the demo writes both its report and theory.html (python -m theory --quick)
    p = subprocess.run([sys.executable, "-m", "mixacm_suite", "demo", "--quick", "--out", str(tmp / "demo")],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    pages["demo"] = tmp / "demo" / "report.html"
    pages["theory"] = tmp / "demo" / "theory.html"
    return pages


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) to run the browser test")
    return _pages(tmp_path_factory.mktemp("pages"))


def _chromium(args: list[str], profile: Path, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=timeout)


def probe(page: Path) -> dict:
    """The probe's findings for one page (1400 px wide)."""
    probed = page.with_name(page.stem + ".probed.html")
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = _chromium(["--dump-dom", "--virtual-time-budget=5000", f"--window-size={WIDTH},1000", probed.as_uri()],
                     page.parent / f".profile-{page.stem}")
    m = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"{page}: no probe output; chromium said: {proc.stderr[-1500:]}"
    import html
    return json.loads(html.unescape(m.group(1)))


NAMES = [f"recorded/{d.name}" for d in summary.recorded_sets()] + ["recorded/index", "theory", "demo"]


@pytest.mark.parametrize("name", NAMES)
def test_page_reads_cleanly(pages, name):
    page = pages[name]
    found = probe(page)
    problems = {k: v for k, v in found.items() if k != "width" and v}
    assert not problems, f"{name}: {json.dumps(problems, indent=1)[:3000]}"
    shot = page.with_name(page.stem + ".png")
    _chromium([f"--screenshot={shot}", f"--window-size={WIDTH},1000", page.as_uri()], page.parent / ".profile-shot")
    assert shot.is_file() and shot.stat().st_size > 10_000


PLANTED = {
    "overflow": '<table style="width:200px"><tr><td style="white-space:nowrap">' + "a long unbroken sentence " * 20
                + "</td></tr></table>",
    "overlap": '<figure id="f"><svg width="300" height="100">' + "".join(
        f'<path d="M{i} 0 L{i} 50" stroke="black"/>' for i in range(0, 60, 10))
               + '<text x="10" y="40">label one</text><text x="14" y="42">label two</text></svg></figure>',
    "markup": "<p>see `python -m theory` for {'hard': [0.17]}</p><table><tr><td>None</td></tr></table>",
    "empty": '<figure id="g"><figcaption>Fig. 9</figcaption><p>not recorded</p></figure>',
}


@pytest.mark.parametrize("defect", sorted(PLANTED))
def test_probe_catches_each_planted_defect(defect, tmp_path):
    """Each defect the page test looks for, planted alone into a clean page, is found (and nothing else is)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found")
    page = tmp_path / f"{defect}.html"
    page.write_text(f"<!doctype html><html><body><h1>clean</h1>{PLANTED[defect]}</body></html>")
    found = probe(page)
    assert found[defect], (defect, found)
    assert not any(v for k, v in found.items() if k not in (defect, "width")), (defect, found)
