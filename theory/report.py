"""Run the theory check modules and write their claims as JSON and HTML (issue 2, runner part).

Every module in MODULES exposes ``checks() -> list[Claim]`` and optionally ``errata() -> list[Erratum]``
(``checks(quick=True)`` is used when the module accepts ``quick``). A module that fails to import or raises
becomes one ``inconclusive`` claim that carries the traceback, so one broken module never hides the others.
"""
from __future__ import annotations

import importlib
import inspect
import json
import platform
import re
import subprocess
import time
import traceback
from pathlib import Path
from typing import Any

from theory.claims import Claim, Erratum

MODULES: list[str] = ["theory.beta_mixture", "theory.thm42_logistic", "theory.thm42_relu", "theory.thm41"]
TEMPLATE_DIR = Path(__file__).parent / "templates"


def _call(fn, quick: bool):
    if "quick" in inspect.signature(fn).parameters:
        return fn(quick=quick)
    return fn()


def _failure_claim(module: str, stage: str, exc: BaseException) -> Claim:
    return Claim(
        id=f"runner.{module}.{stage}",
        statement=f"module {module} runs its checks ({stage})",
        source="theory runner",
        verdict="inconclusive",
        evidence={"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=8)},
    )


def run_module(module: str, quick: bool = False) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """Import one module and collect its claims and errata as dicts; never raises for the module's own errors."""
    t0 = time.perf_counter()
    claims: list[dict] = []
    errata: list[dict] = []
    info: dict[str, Any] = {"module": module}
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - reported as an inconclusive claim
        claims.append(_failure_claim(module, "import", exc).to_dict())
        info["wall_time_s"] = time.perf_counter() - t0
        return claims, errata, info
    try:
        got = _call(mod.checks, quick)
        for c in got:
            if not isinstance(c, Claim):
                raise TypeError(f"checks() returned {type(c).__name__}, expected theory.claims.Claim")
        claims.extend(c.to_dict() for c in got)
    except Exception as exc:  # noqa: BLE001
        claims.append(_failure_claim(module, "checks", exc).to_dict())
    if hasattr(mod, "errata"):
        try:
            got_e = _call(mod.errata, quick)
            for e in got_e:
                if not isinstance(e, Erratum):
                    raise TypeError(f"errata() returned {type(e).__name__}, expected theory.claims.Erratum")
            errata.extend(e.to_dict() for e in got_e)
        except Exception as exc:  # noqa: BLE001
            claims.append(_failure_claim(module, "errata", exc).to_dict())
    for c in claims:
        c.setdefault("module", module)
    for e in errata:
        e.setdefault("module", module)
    info["wall_time_s"] = round(time.perf_counter() - t0, 3)
    if hasattr(mod, "SEED"):
        info["seed"] = getattr(mod, "SEED")
    return claims, errata, info


def _git_commit(repo: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except Exception:  # noqa: BLE001 - provenance is best effort
        return "unknown"


def provenance(module_infos: list[dict], wall_total: float) -> dict[str, Any]:
    import numpy
    import scipy

    try:
        import sympy

        sympy_version = sympy.__version__
    except Exception:  # noqa: BLE001
        sympy_version = "not installed"
    return {
        "git_commit": _git_commit(Path(__file__).resolve().parent.parent),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "node": platform.node()},
        "versions": {"python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__,
                     "sympy": sympy_version},
        "wall_time_s": {i["module"]: i.get("wall_time_s") for i in module_infos},
        "wall_time_total_s": round(wall_total, 3),
        "seeds": {i["module"]: i["seed"] for i in module_infos if "seed" in i},
    }


def key_number(claim: dict) -> str:
    """The one number shown in the table: the evidence's 'key' entry if the module named one, else the first number."""
    ev = claim.get("evidence") or {}
    if "key" in ev:
        k = ev["key"]
        return f"{k}={_fmt(ev.get(k))}" if isinstance(k, str) and k in ev else _fmt(k)
    for k, v in ev.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return f"{k}={_fmt(v)}"
    if "error" in ev:
        return str(ev["error"])[:80]
    return ""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def run_all(modules: list[str] | None = None, quick: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    claims: list[dict] = []
    errata: list[dict] = []
    infos: list[dict] = []
    for m in modules or MODULES:
        c, e, info = run_module(m, quick=quick)
        claims += c
        errata += e
        infos.append(info)
    return {"claims": claims, "errata": errata, "provenance": provenance(infos, time.perf_counter() - t0)}


def table(result: dict[str, Any]) -> str:
    rows = [(c["id"], c["verdict"], key_number(c)) for c in result["claims"]]
    w0 = max([len("id")] + [len(r[0]) for r in rows])
    w1 = max([len("verdict")] + [len(r[1]) for r in rows])
    lines = [f"{'id':<{w0}}  {'verdict':<{w1}}  key number", "-" * (w0 + w1 + 14)]
    lines += [f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows]
    lines.append(f"{len(result['errata'])} errata; wall time {result['provenance']['wall_time_total_s']:.1f} s")
    return "\n".join(lines)


def _find(obj: Any, name: str) -> Any:
    """First value stored under key ``name`` anywhere in a nested evidence dict (depth first, in order)."""
    if isinstance(obj, dict):
        if name in obj and isinstance(obj[name], (int, float)) and not isinstance(obj[name], bool):
            return obj[name]
        for v in obj.values():
            got = _find(v, name)
            if got is not None:
                return got
    elif isinstance(obj, list):
        for v in obj:
            got = _find(v, name)
            if got is not None:
                return got
    return None


def deciding_number(claim: dict) -> str:
    """The number that decides the verdict, in words: a vacuous bound says so; else the evidence's ``key``
    (violations out of n, with the smallest margin when recorded); else the counterexample's margin."""
    ev = claim.get("evidence") or {}
    rhs, slack = ev.get("mean_rhs"), ev.get("min_slack")
    if ev.get("vacuous") and isinstance(rhs, (int, float)) and rhs >= 1:
        txt = f"vacuous: right side >= 1 (mean right side {_fmt(rhs)}"
        txt += f", min slack {_fmt(slack)})" if isinstance(slack, (int, float)) else ")"
        if "violations" in ev:
            txt += f"; violations {ev['violations']}"
        return txt
    k = ev.get("key")
    if isinstance(k, str) and k in ev:
        txt = f"{k.replace('_', ' ')} {_fmt(ev[k])}"
        mm = next((ev[m] for m in ("min_margin", "min_margin_screen", "verified_margin") if isinstance(ev.get(m), (int, float))), None)
        if k.startswith("violations") and mm is not None:
            txt += f" (smallest margin {_fmt(mm)})"
        if k == "min_certified_margin" and "violations" in ev:
            txt += f" (violations {ev['violations']}"
            dd = ev.get("detectable_deficit")
            txt += f", detectable deficit {_fmt(dd)})" if isinstance(dd, (int, float)) else ")"
        return txt
    margin = _find(ev, "margin")
    if margin is None:
        margin = _find(claim.get("counterexample"), "margin")
    if margin is not None:
        return f"margin {_fmt(margin)} (counterexample re-checked in float64)"
    if isinstance(ev.get("violations"), (int, str)) and isinstance(ev.get("random_instances"), int):
        return f"violations {ev['violations']}/{ev['random_instances']}"
    fam = ev.get("violating_cells_by_family")
    if isinstance(fam, dict) and all(isinstance(v, int) for v in fam.values()):
        return f"violating cells {sum(fam.values())}/{ev.get('cells', '?')}"
    if ev.get("sympy_proved") is True:
        return "proved symbolically (sympy)"
    for k, v in ev.items():  # first number that is not a timing or a seed
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not re.search(r"second|time|seed", k):
            return f"{k.replace('_', ' ')} {_fmt(v)}"
    if "error" in ev:
        return str(ev["error"])[:80]
    tables = [k for k, v in ev.items() if isinstance(v, (list, dict)) and v]
    return f"see the evidence ({', '.join(tables)})" if tables else key_number(claim)


def _cell(v: Any, limit: int = 160) -> str:
    if isinstance(v, float):
        return _fmt(v)
    if isinstance(v, list):
        flat = v if all(not isinstance(x, (list, dict)) for x in v) else None
        if flat is not None:
            s = ", ".join(_cell(x) for x in flat)
        else:
            s = json.dumps(v, default=str)
            s = re.sub(r"(\d+\.\d{4})\d+", r"\1", s).replace('"', "")
        return s if len(s) <= limit else s[:limit - 3] + f"... ({len(v)} items)"
    s = str(v)
    return s if len(s) <= limit else s[:limit - 3] + "..."


def kv_rows(obj: Any, prefix: str = "") -> tuple[list[dict], list[dict]]:
    """Nested evidence -> (key/value rows, sub-tables for {"columns", "rows"} pairs); nothing shown as JSON."""
    rows: list[dict] = []
    tables: list[dict] = []
    if isinstance(obj, dict):
        if isinstance(obj.get("columns"), list) and isinstance(obj.get("rows"), list):
            tables.append({"title": prefix.rstrip(".") or "table", "columns": [str(c) for c in obj["columns"]],
                           "rows": [[_cell(x, 40) for x in r] if isinstance(r, list) else [_cell(r)]
                                    for r in obj["rows"]]})
            obj = {k: v for k, v in obj.items() if k not in ("columns", "rows")}
        for k, v in obj.items():
            if isinstance(v, dict) and v:
                r, t = kv_rows(v, f"{prefix}{k}.")
                rows += r
                tables += t
            else:
                rows.append({"key": f"{prefix}{k}", "value": _cell(v)})
    elif obj is not None:
        rows.append({"key": prefix.rstrip(".") or "value", "value": _cell(obj)})
    return rows, tables


VERDICT_COLOURS = {"holds-exact": "#1b7f3b", "holds-certified": "#1b7f3b", "holds-approximately": "#4d7f1b",
                   "fails": "#b3261e", "inconclusive": "#9a6700"}


def render_html(result: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    rows = []
    for c in result["claims"]:
        ev_rows, ev_tables = kv_rows(c.get("evidence"))
        cx_rows, cx_tables = kv_rows(c.get("counterexample")) if c.get("counterexample") else ([], [])
        rows.append({"id": c["id"], "anchor": "ev-" + re.sub(r"[^A-Za-z0-9]+", "-", c["id"]),
                     "statement": _plain(c.get("statement")), "source": _plain(c.get("source")),
                     "verdict": c["verdict"], "colour": VERDICT_COLOURS.get(c["verdict"], "#6b6b6b"),
                     "deciding": deciding_number(c), "module": c.get("module", ""),
                     "evidence": ev_rows, "evidence_tables": ev_tables,
                     "counterexample": cx_rows, "counterexample_tables": cx_tables})
    counts: dict[str, int] = {}
    for c in result["claims"]:
        counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
    prov_rows, _ = kv_rows(result.get("provenance") or {})
    return env.get_template("theory.html.j2").render(
        claims=rows, errata=[{k: _plain(e.get(k)) for k in ("location", "text_says", "correct", "evidence")}
                             for e in result["errata"]],
        provenance=result.get("provenance") or {}, provenance_rows=prov_rows,
        counts=[{"verdict": k, "n": v, "colour": VERDICT_COLOURS.get(k, "#6b6b6b")} for k, v in counts.items()])


def _plain(s: Any) -> str:
    s = "" if s is None else str(s)
    return re.sub(r"`+([^`]*)`+", r"\1", s).replace("`", "'")


def write(result: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    pj = out_dir / "theory.json"
    pj.write_text(json.dumps(result, indent=1, default=_json_default))
    ph = out_dir / "theory.html"
    ph.write_text(render_html(result))
    return pj, ph


def _json_default(o: Any):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except Exception:  # noqa: BLE001
        pass
    return str(o)
