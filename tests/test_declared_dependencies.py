"""Every third-party module the code imports is declared in pyproject.toml (a fresh `pip install -e ".[test]"` must
be enough: `safetensors` was once imported by a test and declared nowhere, and only a hand-installed copy hid it)."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OWN = {"mixacm", "mixacm_suite", "theory", "verification", "reports", "tests", "conftest", "_digits_mlp"}
# module -> distribution name, where they differ
DIST = {"PIL": "pillow", "sklearn": "scikit-learn", "pyautoattack": "pyautoattack", "autoattack": "pyautoattack"}
# imported only inside try/except ImportError, with a message naming the extra
OPTIONAL = {"robustbench": "robustbench"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods.add(node.module.split(".")[0])
    return mods


def _declared() -> dict[str, set[str]]:
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name = lambda req: re.split(r"[<>=!~\[; ]", req, 1)[0].strip().lower()  # noqa: E731
    out = {"": {name(r) for r in proj["dependencies"]}}
    for extra, reqs in proj.get("optional-dependencies", {}).items():
        out[extra] = {name(r) for r in reqs}
    return out


def test_every_imported_module_is_declared():
    declared = _declared()
    core_and_test = declared[""] | declared.get("test", set())
    files = [p for d in ("mixacm", "mixacm_suite", "theory", "verification", "reports", "tests") for p in (ROOT / d).rglob("*.py")]
    files.append(ROOT / "conftest.py")
    missing = {}
    for f in files:
        for mod in _imports(f):
            if mod in OWN or mod in sys.stdlib_module_names:
                continue
            if mod in OPTIONAL:
                extra = OPTIONAL[mod]
                assert extra is None or mod in declared.get(extra, set()), f"{mod}: not in extra {extra!r}"
                continue
            dist = DIST.get(mod, mod).lower()
            if dist not in core_and_test:
                missing.setdefault(dist, []).append(str(f.relative_to(ROOT)))
    assert not missing, f"imported but not declared in pyproject.toml (dependencies or the test extra): {missing}"
