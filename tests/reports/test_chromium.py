"""Load the report built from the real recorded results (reports/recorded/cpu) in a real headless Chromium: DOM has
every table/figure id and no error marker, every figure is laid out at a visible size with drawn paths; screenshot.

Skips (with the reason) when /usr/bin/chromium is absent; CI installs Debian's chromium via .ci/run.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from reports import build
from verification import paper_data

pytestmark = pytest.mark.smoke

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


RECORDED = Path(__file__).resolve().parents[2] / "reports" / "recorded" / "cpu"
FIGURES = ("fig-scatter", "fig-ablations", "fig-aa-gap", "fig3", "fig7", "fig4")
# measures each figure's rendered SVG after layout and writes the numbers into the DOM for --dump-dom
PROBE = """<script>
window.addEventListener('load', () => {
  const out = [];
  for (const f of document.querySelectorAll('figure')) {
    const svg = f.querySelector('svg');
    const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    const paths = svg ? [...svg.querySelectorAll('path')].filter(p => {
      const b = p.getBoundingClientRect(); return b.width > 0 || b.height > 0; }).length : 0;
    out.push(f.id + ':' + Math.round(r.width) + 'x' + Math.round(r.height) + ':' + paths);
  }
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = out.join(' ');
  document.body.appendChild(pre);
});
</script>"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) to run the browser test")
    if not (RECORDED / "results.json").is_file():
        pytest.skip(f"{RECORDED}/results.json missing")
    d = tmp_path_factory.mktemp("rep")
    return build.build([str(RECORDED)], RECORDED / "theory.json", d / "report.html"), d


def _chromium(args, user_dir, timeout=120):
    return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={user_dir}", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_dom_has_every_section(report):
    page, d = report
    proc = _chromium(["--dump-dom", page.as_uri()], d / "profile1")
    dom = proc.stdout
    assert proc.returncode == 0 and "<html" in dom, proc.stderr[-2000:]
    ids = set(re.findall(r'id="([^"]+)"', dom))
    missing = [i for i in [*paper_data.TABLES, "setting", "summary", "claims", *FIGURES, "selfchecks", "theory",
                           "provenance"] if i not in ids]
    assert not missing, f"ids missing from the rendered DOM: {missing}"
    for marker in ("Traceback", "UndefinedError", "TemplateSyntaxError"):
        assert marker not in dom


def test_figures_visible(report):
    page, d = report
    probed = d / "probed.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    proc = _chromium(["--dump-dom", "--virtual-time-budget=5000", "--window-size=1280,1000", probed.as_uri()],
                     d / "profile3")
    m = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert m, proc.stderr[-2000:]
    sizes = {fid: (int(w), int(h), int(n)) for fid, w, h, n in re.findall(r"(\S+):(\d+)x(\d+):(\d+)", m.group(1))}
    for fid in FIGURES:
        w, h, n = sizes.get(fid, (0, 0, 0))
        assert w >= 200 and h >= 150 and n >= 5, f"figure {fid} not visible: {w}x{h} px, {n} drawn paths"


def test_screenshot(report):
    page, d = report
    shot = d / "report.png"  # tests write to their own temporary folders, never into the demo's reports/out
    if shot.exists():
        shot.unlink()
    proc = _chromium([f"--screenshot={shot}", "--window-size=1280,4000", page.as_uri()], d / "profile2")
    assert shot.exists() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
