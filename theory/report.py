"""Run the theory check modules and write their claims as JSON (``theory.json``) and as the page of
``theory.page`` (``theory.html``).

Every module in MODULES exposes ``checks() -> list[Claim]`` and optionally ``errata() -> list[Erratum]``
(``checks(quick=True)`` is used when the module accepts ``quick``). A module that fails to import or raises
becomes one ``inconclusive`` claim that carries the traceback, so one broken module never hides the others.
Importing this module loads neither matplotlib nor torch: the theory tier stays light.
"""
from __future__ import annotations

import importlib
import inspect
import json
import platform
import time
import traceback
from pathlib import Path
from typing import Any

from mixacm.gitinfo import commit_label, git_commit  # stdlib only: the theory stays torch-free
from theory.claims import Claim, Erratum
from theory.page import ROOT, key_number, render_html

MODULES: list[str] = ["theory.beta_mixture", "theory.thm42_logistic", "theory.thm42_relu", "theory.thm41"]


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


def provenance(module_infos: list[dict], wall_total: float) -> dict[str, Any]:
    import numpy
    import scipy

    try:
        import sympy

        sympy_version = sympy.__version__
    except Exception:  # noqa: BLE001
        sympy_version = "not installed"
    return {
        "git_commit": commit_label(ROOT),
        "git": git_commit(ROOT),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "node": platform.node()},
        "versions": {"python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__,
                     "sympy": sympy_version},
        "wall_time_s": {i["module"]: i.get("wall_time_s") for i in module_infos},
        "wall_time_total_s": round(wall_total, 3),
        "seeds": {i["module"]: i["seed"] for i in module_infos if "seed" in i},
    }


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
    prov = provenance(infos, time.perf_counter() - t0)
    prov["quick"] = bool(quick)
    return {"claims": claims, "errata": errata, "provenance": prov}


def table(result: dict[str, Any]) -> str:
    rows = [(c["id"], c["verdict"], key_number(c)) for c in result["claims"]]
    w0 = max([len("id")] + [len(r[0]) for r in rows])
    w1 = max([len("verdict")] + [len(r[1]) for r in rows])
    lines = [f"{'id':<{w0}}  {'verdict':<{w1}}  key number", "-" * (w0 + w1 + 14)]
    lines += [f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows]
    lines.append(f"{len(result['errata'])} errata; wall time {result['provenance']['wall_time_total_s']:.1f} s")
    return "\n".join(lines)


def write(result: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    pj = out_dir / "theory.json"
    pj.write_text(json.dumps(result, indent=1, default=_json_default))
    ph = out_dir / "theory.html"
    ph.write_text(render_html(json.loads(pj.read_text())))
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
