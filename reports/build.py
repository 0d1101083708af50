"""``mixacm report``: render paper data + results JSON (+ theory JSON) into ONE self-contained HTML file.

All computing happens here in Python (differences, verdicts, colours, SVG figures); the Jinja2 templates in
``reports/templates/`` only render the prepared view-model dicts. Inputs:

- ``--results DIR_OR_FILE ...``: results files in the schema of ``verification/schema.py`` (a directory is searched
  recursively for ``*.json`` holding ``provenance`` + ``results``); ``*.json`` holding ``acm_profiles``
  (``{"acm_profiles": {"block 3": {"teacher": [...], "student": [...], "natural": [...]}}}``) feed Supp. Fig. 4.
- ``--theory reports/out/theory.json``: output of ``python -m theory`` (``claims`` + ``errata``), if present.
- ``--out reports/out/report.html``.

Cells without results are shown as "not run" -- never blank, never invented.
"""
from __future__ import annotations

import argparse
import html
import json
import math
import sys
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from verification import claims as claims_mod
from verification import compare, paper_data, schema

TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_OUT = Path("reports/out/report.html")
DEFAULT_THEORY = Path("reports/out/theory.json")
COLOURS = {"pass": "#1b7f3b", "fail": "#b3261e", "not run": "#6b6b6b", "no paper value": "#6b6b6b",
           "reproduced": "#1b7f3b", "not reproduced": "#b3261e", "inconclusive": "#9a6700", "n/a": "#6b6b6b",
           "scaled": "#3d5a80"}


# ------------------------------------------------------------------------------------------------ loading
def load_inputs(paths: list[str]) -> tuple[list[dict], list[dict], dict]:
    """-> (results files, records, acm profiles). Invalid results files raise SchemaError naming the file."""
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files += sorted(path.rglob("*.json"))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"--results {p}: no such file or directory")
    results, records, profiles = [], [], {}
    for f in files:
        try:
            obj = json.loads(f.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(obj, dict) and "provenance" in obj and "results" in obj:
            try:
                schema.validate_results(obj)
            except schema.SchemaError as e:
                raise schema.SchemaError(f"{f}: {e}") from None
            results.append({"path": str(f), **obj})
            records += obj["results"]
        elif isinstance(obj, dict) and "acm_profiles" in obj:
            profiles.update(obj["acm_profiles"])
        elif isinstance(obj, dict) and str(obj.get("schema", "")).startswith("mixacm.acm_profiles"):
            for name, model in obj["models"].items():  # mixacm.acm_analysis.acm_profiles output
                for b in model["blocks"]:
                    profiles.setdefault(f"block {b['block']}", {})[name] = b["profile"]
    return results, records, profiles


def _fmt(v: float | None, std: float | None = None, n: int | None = None) -> str:
    if v is None:
        return "–"
    s = f"{v:.2f}"
    if std is not None:
        s += f" ± {std:.2f}"
    if n is not None and n > 1:
        s += f" (n={n})"
    return s


# ------------------------------------------------------------------------------------------------ view models
def table_views(records: list[dict]) -> list[dict]:
    by_cell: dict[tuple, list[dict]] = {}
    for r in records:
        by_cell.setdefault((r["table"], r["row"], r["column"]), []).append(r)
    views = []
    for name, t in paper_data.load_all().items():
        rows: dict[str, list[dict]] = {}
        counts = {"pass": 0, "fail": 0, "not run": 0, "no paper value": 0, "scaled": 0}
        for c in t["cells"]:
            recs = by_cell.get((c["table"], c["row"], c["column"]), [])
            tol = compare.tolerance_for(c)
            entry = {"column": c["column"], "paper": _fmt(c["value"], c["std"]), "tolerance": f"±{tol:.2f}",
                     "ours": "not run", "diff": "", "verdict": "not run", "scale": "", "attack": c["setting"].get("attack") or ""}
            if recs:
                r = recs[-1]
                cmp = compare.compare(r, c)
                entry.update(ours=_fmt(r["value"], r["std"], r["n_runs"]),
                             diff="" if cmp.difference is None else f"{cmp.difference:+.2f}",
                             verdict={True: "pass", False: "fail", None: "no paper value"}[cmp.passed],
                             scale=str(r["setting"].get("scale") or ""))
                if entry["scale"] and cmp.passed is not None:
                    # a scaled-down run (smoke/cpu tier) is not held to the paper-scale tolerance
                    entry["verdict"] = "scaled"
                if len(recs) > 1:
                    entry["scale"] += f" ({len(recs)} results; last shown)"
            elif c["missing"]:
                entry["verdict"] = "no paper value"
            entry["colour"] = COLOURS[entry["verdict"]]
            counts[entry["verdict"]] += 1
            rows.setdefault(c["row"], []).append(entry)
        views.append({"id": name, "title": t["title"], "number": name[5:], "source": f"{t['file']} line {t['caption_line']}",
                      "rows": [{"row": k, "cells": v} for k, v in rows.items()], "notes": t["notes"],
                      "counts": counts})
    return views


def claim_views(records: list[dict]) -> list[dict]:
    out = []
    for c in claims_mod.evaluate_claims(records, paper=True):
        def lines(conds):
            return [f"{n['condition']}: Δ={n['delta']} thr={n['threshold']} → {n['status']}" if n.get("delta") is not None
                    else f"{n['condition']} → {n['status']}" for n in conds]
        out.append({"id": c["id"], "statement": c["statement"], "source": c["source"], "rule": c["rule"],
                    "verdict": c["verdict"], "colour": COLOURS[c["verdict"]], "reason": c["reason"] or "",
                    "numbers": lines(c["numbers"]), "paper_verdict": c["paper_verdict"] or "n/a",
                    "paper_colour": COLOURS[c["paper_verdict"] or "n/a"], "paper_reason": c["paper_reason"] or "",
                    "paper_numbers": lines(c["paper_numbers"])})
    return out


def theory_view(path: Path | None) -> dict:
    if path is None or not path.exists():
        return {"present": False, "path": str(path) if path else "", "claims": [], "errata": []}
    obj = json.loads(path.read_text(encoding="utf-8"))
    cl = [{"id": c.get("id", "?"), "statement": c.get("statement", ""), "source": c.get("source", ""),
           "verdict": c.get("verdict", "?"),
           "colour": {"holds-exact": "#1b7f3b", "holds-certified": "#1b7f3b", "holds-approximately": "#4d7f1b",
                      "fails": "#b3261e"}.get(c.get("verdict"), "#9a6700")} for c in obj.get("claims", [])]
    return {"present": True, "path": str(path), "claims": cl, "errata": obj.get("errata", [])}


def provenance_view(results: list[dict]) -> list[dict]:
    out = []
    for r in results:
        p = r["provenance"]
        seeds = sorted({s for rec in r["results"] for s in rec["seeds"]})
        out.append({"path": r["path"], "tier": p["tier"], "commit": p["commit"], "machine": p["machine"],
                    "python": p["python"], "torch": p["torch"], "started": p["started"],
                    "wall_time": f"{p['wall_time_s']:.0f} s" + (f" (whole plan, all sessions: {p['plan_compute_s']:.0f} s)"
                                                               if p.get("plan_compute_s") else ""),
                    "n_records": len(r["results"]), "seeds": seeds,
                    "configs": json.dumps(sorted({json.dumps(rec["config"], sort_keys=True) for rec in r["results"]})[:20],
                                          indent=1)})
    return out


# ------------------------------------------------------------------------------------------------ SVG figures
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def svg_lines(series: list[dict], *, title: str, xlabel: str, ylabel: str, logx: bool = False,
              width: int = 520, height: int = 300) -> str:
    """Line chart as inline SVG. series: [{"label", "x": [...], "y": [...], "dash": bool}]."""
    pts = [(x, y) for s in series for x, y in zip(s["x"], s["y"])]
    if not pts:
        return ""
    tx = (lambda v: math.log10(v)) if logx else (lambda v: v)
    xs, ys = [tx(x) for x, _ in pts], [y for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    L, R, T, B = 55, 130, 28, 40
    px = lambda v: L + (tx(v) - x0) / (x1 - x0) * (width - L - R)  # noqa: E731
    py = lambda v: height - B - (v - y0) / (y1 - y0) * (height - T - B)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(title)}">',
             f'<text x="{width / 2 - 60}" y="16" font-size="13">{html.escape(title)}</text>',
             f'<line x1="{L}" y1="{height - B}" x2="{width - R}" y2="{height - B}" stroke="#333"/>',
             f'<line x1="{L}" y1="{T}" x2="{L}" y2="{height - B}" stroke="#333"/>',
             f'<text x="{(L + width - R) / 2 - 30}" y="{height - 8}" font-size="11">{html.escape(xlabel)}</text>',
             f'<text x="12" y="{T - 8}" font-size="11">{html.escape(ylabel)}</text>']
    for frac in (0.0, 0.5, 1.0):
        yv = y0 + frac * (y1 - y0)
        parts.append(f'<text x="{L - 48}" y="{py(yv) + 4:.1f}" font-size="10">{yv:.3g}</text>')
        xv = x0 + frac * (x1 - x0)
        xlab = 10 ** xv if logx else xv
        parts.append(f'<text x="{L + frac * (width - L - R) - 10:.1f}" y="{height - B + 14}" font-size="10">{xlab:.3g}</text>')
    for i, s in enumerate(series):
        col = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(s["x"], s["y"]))
        dash = ' stroke-dasharray="5,4"' if s.get("dash") else ""
        parts.append(f'<polyline fill="none" stroke="{col}" stroke-width="1.8"{dash} points="{path}"/>')
        parts.append(f'<text x="{width - R + 8}" y="{T + 14 * (i + 1)}" font-size="11" fill="{col}">'
                     f'{html.escape(s["label"])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def figure_views(records: list[dict], profiles: dict) -> list[dict]:
    figs = []
    # Fig. 3: accuracy vs data fraction
    series = []
    for method in ("mixacm", "pgd7_at"):
        for col in ("clean", "robust"):
            pts = sorted((r["setting"].get("data_fraction"), r["value"]) for r in records
                         if r["table"] == "fig3" and r["row"] == method and r["column"] == col
                         and r["setting"].get("data_fraction") is not None)
            if pts:
                series.append({"label": f"{method} {col}", "x": [p[0] for p in pts], "y": [p[1] for p in pts],
                               "dash": method == "pgd7_at"})
    figs.append({"id": "fig3", "title": "Fig. 3: accuracy vs fraction of CIFAR-10 training data",
                 "svg": svg_lines(series, title="Fig. 3 (ours)", xlabel="data fraction", ylabel="accuracy %"),
                 "paper": "figure, values not in text"})
    # Supp. Fig. 4: sorted ACM profiles per block
    svgs = []
    for block, models in sorted(profiles.items()):
        ser = []
        for name, prof in models.items():
            p = sorted(float(v) for v in prof)
            ser.append({"label": name, "x": [i / max(1, len(p) - 1) for i in range(len(p))], "y": p})
        svgs.append(svg_lines(ser, title=f"ACM profile, {block}", xlabel="channel rank (normalised)", ylabel="ACM"))
    figs.append({"id": "fig4", "title": "Supp. Fig. 4: sorted activated channel maps (teacher, student, natural)",
                 "svg": "".join(svgs), "paper": "figure, values not in text"})
    # Supp. Fig. 7(a): alpha_acm sweep
    series = []
    for col in ("clean", "robust"):
        pts = sorted((r["setting"].get("alpha_acm"), r["value"]) for r in records
                     if r["table"] == "fig7" and r["column"] == col and r["setting"].get("alpha_acm"))
        if pts:
            series.append({"label": col, "x": [p[0] for p in pts], "y": [p[1] for p in pts]})
    figs.append({"id": "fig7", "title": "Supp. Fig. 7(a): accuracy vs alpha_acm (only-ACM loss)",
                 "svg": svg_lines(series, title="Fig. 7a (ours)", xlabel="alpha_acm", ylabel="accuracy %", logx=True),
                 "paper": "figure, values not in text"})
    for f in figs:
        f["status"] = "ours" if f["svg"] else "not run"
    return figs


def benchmark_view(records: list[dict]) -> list[dict]:
    rows = [r for r in records if r["table"] == "bench"]
    base = next((r["value"] for r in rows if r["row"] == "natural" and r["column"] == "step_time_s"), None)
    return [{"row": r["row"], "column": r["column"], "value": _fmt(r["value"], r["std"], r["n_runs"]),
             "ratio": f"{r['value'] / base:.2f}×" if base and r["column"] == "step_time_s" else ""} for r in rows]


def choice_view(records: list[dict]) -> list[dict]:
    """Implementation choices the paper leaves open, run side by side (table "choices": row = run, column =
    clean/robust, ``setting.choice`` says what differs from the defaults)."""
    rows: dict[str, dict] = {}
    for r in records:
        if r["table"] == "choices":
            row = rows.setdefault(r["row"], {"run": r["row"], "choice": r["setting"].get("choice") or "",
                                             "clean": "not run", "robust": "not run"})
            row[r["column"]] = _fmt(r["value"], r["std"], r["n_runs"])
    return list(rows.values())


def build(results_paths: list[str], theory_path: Path | None, out: Path) -> Path:
    results, records, profiles = load_inputs(results_paths)
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    page = env.get_template("report.html.j2").render(
        tables=table_views(records), claims=claim_views(records), theory=theory_view(theory_path),
        provenance=provenance_view(results), figures=figure_views(records, profiles), bench=benchmark_view(records),
        choices=choice_view(records),
        n_records=len(records), inputs=[r["path"] for r in results], tolerance_rule=compare.RULE,
        claim_rule=claims_mod.__doc__.split("Decision rule (declared once).")[1].split("Inputs are")[0].strip(),
        colours=COLOURS)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mixacm report", description=__doc__.split("\n")[0])
    ap.add_argument("--results", nargs="*", default=[], help="results JSON files or directories")
    ap.add_argument("--theory", default=str(DEFAULT_THEORY), help="theory JSON (skipped when absent)")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    a = ap.parse_args(argv)
    from mixacm.paths import OutputPathError, writable_file

    try:
        writable_file(a.out, "--out")
        if not a.results:
            raise ValueError("no --results given; pass results.json files or the directories holding them "
                             "(e.g. --results reports/recorded/cpu)")
        found, records, _ = load_inputs(a.results)
        if not records:
            raise ValueError(f"no results (a JSON object with 'provenance' and 'results') in {', '.join(a.results)}; "
                             f"pass what a tier or plan wrote (results.json), not a run dir or an evaluation file")
        out = build(a.results, Path(a.theory) if a.theory else None, Path(a.out))
    except (ValueError, FileNotFoundError, OutputPathError) as e:
        print(f"mixacm report: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    print(f"report written to {out.resolve()} ({len(records)} records from {len(found)} file(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
