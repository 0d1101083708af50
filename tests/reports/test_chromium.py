"""Load the report in a real headless Chromium: DOM has every table/figure id and no error marker; screenshot.

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
OUT = Path(__file__).resolve().parents[2] / "reports" / "out"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) to run the browser test")
    d = tmp_path_factory.mktemp("rep")
    return build.build([], d / "none.json", d / "report.html"), d


def _chromium(args, user_dir, timeout=120):
    return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={user_dir}", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_dom_has_every_section(report):
    page, d = report
    proc = _chromium(["--dump-dom", page.as_uri()], d / "profile1")
    dom = proc.stdout
    assert proc.returncode == 0 and "<html" in dom, proc.stderr[-2000:]
    ids = set(re.findall(r'id="([^"]+)"', dom))
    missing = [i for i in [*paper_data.TABLES, "claims", "fig3", "fig4", "fig7", "theory", "provenance"] if i not in ids]
    assert not missing, f"ids missing from the rendered DOM: {missing}"
    for marker in ("Traceback", "UndefinedError", "TemplateSyntaxError"):
        assert marker not in dom


def test_screenshot(report):
    page, d = report
    OUT.mkdir(parents=True, exist_ok=True)
    shot = OUT / "report.png"
    if shot.exists():
        shot.unlink()
    proc = _chromium([f"--screenshot={shot}", "--window-size=1280,4000", page.as_uri()], d / "profile2")
    assert shot.exists() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
