"""The import graph between the top-level packages, read with ``ast`` from the sources (imports inside functions
included, test modules and conftest files excluded): the library at the bottom, the entry layer at the top, every
arrow pointing down or staying inside its package, so there is no circle either. ``theory`` imports only the
library's stdlib-only modules, so it stays torch-free."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"mixacm": 0, "theory": 1, "verification": 2, "reports": 3, "mixacm_suite": 4}
THEORY_MAY_IMPORT = {"mixacm.gitinfo", "mixacm.paths"}  # stdlib only (the theory's tox env has no torch)


def _imports(path: Path) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module, node.lineno))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            out.append((node.args[0].value, node.lineno))
    return out


def _sources():
    for pkg in LAYERS:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if path.name.startswith("test_") or path.name == "conftest.py" or "benchmarks" in path.parts:
                continue
            yield pkg, path


def arrows() -> list[tuple[str, str, str]]:
    """(importing package, imported module, where) for every import of another top-level package."""
    out = []
    for pkg, path in _sources():
        for module, line in _imports(path):
            top = module.split(".")[0]
            if top in LAYERS and top != pkg:
                out.append((pkg, module, f"{path.relative_to(ROOT)}:{line}"))
    return out


def test_no_arrow_points_up():
    up = [f"{where}: {pkg} imports {module}" for pkg, module, where in arrows()
          if LAYERS[module.split(".")[0]] > LAYERS[pkg]]
    assert not up, "imports pointing up the layers " + " > ".join(LAYERS) + ":\n" + "\n".join(up)


def test_theory_imports_only_stdlib_modules_of_the_library():
    bad = [f"{where}: {module}" for pkg, module, where in arrows() if pkg == "theory" and module not in THEORY_MAY_IMPORT]
    assert not bad, bad


def test_the_checker_sees_imports_inside_functions_and_by_name(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from reports.build import main\n    import importlib\n"
                 "    importlib.import_module('theory.__main__')\n")
    assert [m for m, _ in _imports(f)] == ["reports.build", "importlib", "theory.__main__"]
