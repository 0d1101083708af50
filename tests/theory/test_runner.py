"""The theory runner: valid JSON + HTML with the schema; a broken module becomes an inconclusive claim."""
import json
import sys
import types

from theory import report
from theory.__main__ import main
from theory.claims import VERDICTS


def _planted(name, body):
    mod = types.ModuleType(name)
    exec(body, mod.__dict__)
    sys.modules[name] = mod
    return name


def test_planted_failures_become_inconclusive_and_others_survive(tmp_path):
    good = _planted("planted_good", "from theory.claims import Claim, Erratum\n"
                    "def checks(quick=False):\n    return [Claim('p.ok', 's', 'src', 'holds-exact', {'x': 1.5})]\n"
                    "def errata():\n    return [Erratum('loc', 'says', 'right', 'how')]\n")
    bad = _planted("planted_bad", "def checks():\n    raise ZeroDivisionError('planted')\n")
    res = report.run_all([bad, "planted_missing_module_xyz", good], quick=True)
    by = {c["id"]: c for c in res["claims"]}
    assert by["runner.planted_bad.checks"]["verdict"] == "inconclusive"
    assert "planted" in by["runner.planted_bad.checks"]["evidence"]["error"]
    assert by["runner.planted_missing_module_xyz.import"]["verdict"] == "inconclusive"
    assert by["p.ok"]["verdict"] == "holds-exact"
    pj, ph = report.write(res, tmp_path)
    data = json.loads(pj.read_text())
    assert set(data) == {"claims", "errata", "provenance"}
    for c in data["claims"]:
        assert {"id", "statement", "source", "verdict", "evidence"} <= set(c) and c["verdict"] in VERDICTS
    assert data["errata"][0]["location"] == "loc"
    assert {"git_commit", "machine", "versions", "wall_time_s", "seeds"} <= set(data["provenance"])
    html = ph.read_text()
    assert html.startswith("<!DOCTYPE html>") and "p.ok" in html and "runner.planted_bad.checks" in html


def test_main_returns_zero_and_writes_files(tmp_path, capsys):
    rc = main(["--out", str(tmp_path), "--only", "thm41", "--quick"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "thm41.step9" in out
    assert json.loads((tmp_path / "theory.json").read_text())["claims"]
    assert (tmp_path / "theory.html").exists()
    assert main(["--out", str(tmp_path), "--only", "nonsense"]) == 2
