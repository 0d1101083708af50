"""``mixacm report``: render paper data + results JSON (+ theory JSON) into ONE self-contained HTML file.

The report only shows numbers that are in its inputs: records (``verification/schema.py``), the claims evaluated on
them (``verification/claims.py``), the paper's tables (``verification/paper/``), evaluations (``evals/*.json``: self
checks, the teacher's accuracy) and run directories (``runs/<key>/seed<s>/{meta,config,summary}.json`` and
``metrics.jsonl``) found next to the results. Python here prepares view-model dicts (grouping, formatting, figures
via ``reports/figures.py``); the Jinja2 templates in ``reports/templates/`` only render them. Inputs:

- ``--results DIR_OR_FILE ...``: results files (a directory is searched recursively for ``*.json`` holding
  ``provenance`` + ``results``; evaluations and run directories are read from the same directories);
  ``*.json`` holding ACM profiles feed Supp. Fig. 4.
- ``--theory reports/out/theory.json``: output of ``python -m theory`` (``claims`` + ``errata``), if present.
- ``--out reports/out/report.html``.

Layout: what the reader came for first (setting, teacher, claims tally, one line per claim: ours vs paper), then the
figures, then the paper's tables (rows without results folded away), claim details, evaluator self-checks, theory and
per-run provenance. Cells without results say "not run" -- never blank, never invented.
"""
from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from verification import claims as claims_mod
from verification import compare, paper_data, schema
from verification.results_dir import EVAL_STEM, load_inputs, load_run_files, load_scaling

TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_OUT = Path("reports/out/report.html")
DEFAULT_THEORY = Path("reports/out/theory.json")
COLOURS = {"pass": "#1b7f3b", "fail": "#b3261e", "not run": "#6b6b6b", "no paper value": "#6b6b6b",
           "reproduced": "#1b7f3b", "not reproduced": "#b3261e", "inconclusive": "#9a6700", "n/a": "#6b6b6b",
           "not testable here": "#4a4e69", "not run here": "#6b6b6b",
           "scaled": "#3d5a80", "holds": "#1b7f3b", "fails": "#b3261e", "unclear": "#9a6700",
           "ok": "#1b7f3b", "flag": "#b3261e", "skipped": "#6b6b6b"}
DATASETS = {"cifar10": "CIFAR-10", "cifar10-jpeg": "CIFAR-10 (JPEG q75 copy)", "cifar100": "CIFAR-100",
            "digits": "digits (scikit-learn 8×8)", "imagenet": "ImageNet"}
ATTACKS = {"clean": "clean", "autoattack": "AutoAttack", "fgsm": "FGSM", "square": "Square", "apgd-ce": "APGD-CE",
           "apgd-dlr": "APGD-DLR", "fab": "FAB", "step_time_s": "step time"}


# ------------------------------------------------------------------------------------------------ formatting
def plain(s: Any) -> str:
    """Prose from the sources without markup: RST/Markdown backticks and ``**`` removed."""
    s = "" if s is None else str(s)
    s = re.sub(r"`+([^`]*)`+(_?)", r"\1", s)
    return s.replace("**", "").replace("`", "'")


def _fmt(v: float | None, std: float | None = None, n: int | None = None) -> str:
    if v is None:
        return "–"
    s = f"{v:.2f}"
    if std is not None:
        s += f" ± {std:.2f}"
    if n is not None and n > 1:
        s += f" (n={n})"
    return s


def _secs(s: float | None) -> str:
    if s is None:
        return "–"
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 90:
        return f"{s / 60:.0f} min"
    return f"{s:.0f} s"


def dataset_label(name: str | None) -> str:
    return DATASETS.get(name or "", name or "unknown data")


def is_cifar10(name: str | None) -> bool:
    return bool(name) and name.startswith("cifar10") and not name.startswith("cifar100")


def attack_label(a: str | None) -> str:
    if not a:
        return "–"
    m = re.fullmatch(r"(pgd|cw)(\d+)", a)
    if m:
        return f"{m.group(1).upper()}-{m.group(2)}"
    return ATTACKS.get(a, a)


def slug(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", "-".join(parts)).strip("-").lower()


def cell_anchor(table: str, row: str, column: str) -> str:
    return "cell-" + slug(table, row, column)


def _is_metric_row(name: str) -> bool:
    return name in ("Accuracy", "Robustness", "Acc.", "Rob.")


def _metric(rec: dict) -> str:
    a = rec["setting"].get("attack")
    return "clean" if a == "clean" else "robust"


# ------------------------------------------------------------------------------------------------ self-checks
def eval_keys(rec: dict) -> list[str]:
    """The evaluation files behind a record: ``<run>-s<seed>`` (+ ``-aa`` for AutoAttack cells)."""
    run = rec["setting"].get("run")
    if not run:
        return []
    suffix = "-aa" if rec["setting"].get("attack") == "autoattack" else ""
    return [f"{run}-s{s}{suffix}" for s in rec["seeds"]]


def _problems(ev: dict) -> list[dict]:
    out = [{"kind": "flag", "name": c.get("name", "?"), "detail": plain(c.get("detail", ""))}
           for c in ev.get("self_checks") or [] if c.get("status") == "flag"]
    out += [{"kind": "warning", "name": "warning", "detail": plain(w if isinstance(w, str) else json.dumps(w))}
            for w in ev.get("warnings") or []]
    return out


def _summary_line(problems: list[dict]) -> dict:
    """One line per evaluation: the flag names (a warning repeating a flag's detail is not listed twice)."""
    flags = [p for p in problems if p["kind"] == "flag"]
    details = {p["detail"] for p in flags}
    extra = [p for p in problems if p["kind"] == "warning" and p["detail"] not in details]
    names = [p["name"] for p in flags] + [f"warning: {p['detail'][:80]}" for p in extra]
    detail = (flags or extra)[0]["detail"] if (flags or extra) else ""
    n_dup = sum(1 for p in problems if p["kind"] == "warning" and p["detail"] in details)
    return {"names": ", ".join(names), "detail": detail if len(detail) <= 110 else detail[:107] + "...",
            "full": detail, "dup": " (also raised as a warning)" if n_dup else ""}


def selfcheck_view(evals: dict[str, dict]) -> dict:
    rows = []
    for stem, ev in sorted(evals.items()):
        m = EVAL_STEM.match(stem)
        checks = ev.get("self_checks") or []
        cnt = {k: sum(1 for c in checks if c.get("status") == k) for k in ("ok", "flag", "skipped")}
        attacks = ", ".join(attack_label(a) for a in (ev.get("config") or {}).get("attacks", []))
        rows.append({"stem": stem, "anchor": "eval-" + slug(stem), "run": m.group("run") if m else stem,
                     "seed": m.group("seed") if m else "", "set_aside": bool(m and m.group("aside")),
                     "n": ev.get("n_eval"), "attacks": attacks or "clean only", **cnt,
                     "problems": _problems(ev), "line": _summary_line(_problems(ev)),
                     "skipped": [f"{c.get('name')}: {plain(c.get('detail'))}" for c in checks
                                 if c.get("status") == "skipped"]})
    n_flags = sum(r["flag"] for r in rows)
    n_warn = sum(len([p for p in r["problems"] if p["kind"] == "warning"]) for r in rows)
    return {"rows": rows, "n": len(rows), "n_flags": n_flags, "n_warnings": n_warn,
            "flagged": [r for r in rows if r["problems"]]}


def training_warnings(runs: dict[tuple[str, int], dict]) -> list[dict]:
    """Warnings a run's training raised (summary.json "warnings": collapse to chance, a dwarfing loss term), named by
    run and seed."""
    return [{"run": key, "seed": seed, "warning": plain(w)} for (key, seed), entry in sorted(runs.items())
            for w in ((entry.get("summary") or {}).get("warnings") or [])]


def cell_problems(recs: list[dict], evals: dict[str, dict]) -> list[dict]:
    """One entry per evaluation behind the cell that raised a flag or warning."""
    out = []
    for r in recs:
        for k in eval_keys(r):
            probs = _problems(evals[k]) if k in evals else []
            if probs:
                out.append({**_summary_line(probs), "eval": k, "anchor": "eval-" + slug(k)})
    return out


# ------------------------------------------------------------------------------------------------ claims
# One wording of a claim's condition for every page that shows one (this report, each set's README, the index).
def side_text(q: dict | None) -> str:
    """One side of a condition: 'mean ± std (n=seeds)'."""
    if not q or q.get("mean") is None:
        return "–"
    return _fmt(q["mean"], q.get("std"), q.get("n"))


def pair_sides(cond: dict) -> list[str]:
    """The compared sides of a condition: [a, b], [a] where it compares with a fixed bound, [] without a."""
    if cond.get("a") is None:
        return []
    return [side_text(cond[s]) for s in ("a", "b") if cond.get(s) is not None]


def pair_text(cond: dict) -> str:
    """'a vs b' of a condition (or 'a' where it compares with a fixed bound)."""
    return " vs ".join(pair_sides(cond))


def p_text(cond: dict) -> str:
    """The smaller one-sided p-value of a condition with its direction, e.g. 'p = 0.012 for Δ < 0'."""
    pg, pl = cond.get("p_greater"), cond.get("p_less")
    if pg is None or pl is None:
        return ""
    p, side = (pg, ">") if pg <= pl else (pl, "<")
    return f"p = {p:.2g} for Δ {side} 0" if p < 0.001 else f"p = {p:.3f} for Δ {side} 0"


def test_text(cond: dict) -> str:
    """'paired on 10000 images' / 'unpaired' / '' (paper side, fixed bounds), plus Holm's p where it differs."""
    test = cond.get("test") or ""
    if test == claims_mod.TEST_PAIRED:
        images = (cond.get("a") or {}).get("paired_images")
        out = f"paired on {images} images" if images else "paired"
    elif test == claims_mod.TEST:
        out = "unpaired (no per-image masks)"
    else:
        return ""
    holm, pl, pg = cond.get("p_less_holm"), cond.get("p_less"), cond.get("p_greater")
    # Holm's adjustment applies to the 'not reproduced' direction: shown only where the data point that way
    if holm is not None and pl is not None and holm != pl and (pg is None or pl <= pg):
        out += f", Holm-adjusted p for Δ < 0 = {holm:.3g}"
    return out


def claim_views(records: list[dict], cell_ids: set[str]) -> list[dict]:
    dsets = {r["setting"].get("dataset") for r in records} - {None}
    if dsets and not any(is_cifar10(d) for d in dsets):
        # the claims name the paper's CIFAR-10 rows; our numbers are on other data: do not call them CIFAR-10
        def rel(s: str) -> str:
            return re.sub(r"CIFAR-10\s*/\s*", "", plain(s))
    else:
        rel = plain
    out = []
    for c in claims_mod.evaluate_claims(records, paper=True):
        paper_by_text = {n["condition"]: n for n in c["paper_numbers"]}
        conds = []
        for i, n in enumerate(c["numbers"]):
            p = paper_by_text.get(n["condition"]) or (c["paper_numbers"][i] if i < len(c["paper_numbers"]) else None)
            links = []
            for side in ("a", "b"):
                q = n.get(side)
                if q and q.get("label"):
                    t, _, rest = q["label"].partition("/")
                    row, _, col = rest.rpartition("/")
                    anchor = cell_anchor(t, row, col)
                    links.append({"label": rel(q["label"]), "href": "#" + anchor if anchor in cell_ids
                                  else (f"#{t}" if t.startswith("fig") else "")})
            conds.append({
                "text": rel(n["condition"]), "ours": pair_sides(n), "paper": pair_sides(p) if p else [],
                "status": n["status"], "colour": COLOURS.get(n["status"], "#6b6b6b"),
                "paper_status": p["status"] if p else "", "paper_colour": COLOURS.get(p["status"], "#6b6b6b") if p else "",
                "delta": "" if n.get("delta") is None else f"{n['delta']:+.2f}",
                "threshold": "" if n.get("threshold") is None else f"{n['threshold']:.2f}",
                "p": p_text(n), "ci": "" if n.get("ci95") is None else
                f"[{n['ci95'][0]:+.2f}, {n['ci95'][1]:+.2f}]",
                "reason": plain(n.get("reason")), "links": links,
                "n": "/".join(str(n[s]["n"]) for s in ("a", "b") if n.get(s)),
                "test": test_text(n),
            })
        if not conds and c["paper_numbers"]:  # ours missing an input: still show what the paper says
            conds = [{"text": plain(p["condition"]), "ours": [], "paper": pair_sides(p), "status": "", "colour": "",
                      "paper_status": p["status"], "paper_colour": COLOURS.get(p["status"], "#6b6b6b"), "delta": "",
                      "threshold": "", "p": "", "ci": "", "reason": "", "links": [], "n": "", "test": ""}
                     for p in c["paper_numbers"]]
        out.append({"id": c["id"], "num": f"C{len(out) + 1}", "anchor": "claim-" + c["id"],
                    "statement": plain(c["statement"]),
                    "source": plain(c["source"]), "quote": plain(c.get("quote")), "rule": plain(c["rule"]),
                    "verdict": c["verdict"],
                    "colour": COLOURS[c["verdict"]], "reason": rel(c["reason"]),
                    "paper_verdict": c["paper_verdict"] or "n/a", "paper_colour": COLOURS[c["paper_verdict"] or "n/a"],
                    "paper_reason": plain(c["paper_reason"]), "conditions": conds})
    return out


def claims_by_cell(claims: list[dict]) -> dict[str, list[dict]]:
    """cell anchor -> the claims whose numbers name that cell ({"num", "anchor", "id"})."""
    out: dict[str, list[dict]] = {}
    for c in claims:
        for cond in c["conditions"]:
            for link in cond["links"]:
                if link["href"].startswith("#cell-"):
                    lst = out.setdefault(link["href"][1:], [])
                    if all(x["id"] != c["id"] for x in lst):
                        lst.append({"num": c["num"], "anchor": c["anchor"], "id": c["id"]})
    return out


def tally(claims: list[dict]) -> list[dict]:
    return [{"verdict": v, "n": sum(1 for c in claims if c["verdict"] == v), "colour": COLOURS[v]}
            for v in schema.CLAIM_VERDICTS]


# ------------------------------------------------------------------------------------------------ tables
def _scale_train_part(scale: str) -> str:
    """The recorded scale string without its evaluation part (stated per attack from the records instead)."""
    return "; ".join(p.strip() for p in scale.split(";") if "test image" not in p).strip()


def eval_scale(recs: list[dict]) -> str:
    """'clean, PGD-20: 500 test images (seeds 0, 1); AutoAttack: 500 test images (seeds 0, 1)' from the settings."""
    by: dict[tuple, list[str]] = {}
    for r in recs:
        s = r["setting"]
        if s.get("attack") in (None, "step_time_s"):
            continue
        key = s.get("eval_n")
        lab = attack_label(s.get("attack"))
        if lab not in by.setdefault(key, []):
            by[key].append(lab)
    parts = []
    merged: dict[tuple, Any] = {}
    for n, labs in by.items():  # attacks evaluated on the same number of images share one phrase
        merged.setdefault(tuple(labs), n)
    for labs, n in sorted(merged.items(), key=lambda kv: kv[0][0] != "clean"):
        parts.append(f"{', '.join(labs)}: {n} test images" if n else f"{', '.join(labs)}: the plan's test subset")
    from verification.runner import eps_text

    eps = sorted({(eps_text(e) if isinstance(e, (int, float)) else str(e))
                  for r in recs for e in [r["setting"].get("eps")] if e})
    tail = f"; eps {', '.join(eps)}" if eps else ""
    return "; ".join(parts) + tail


def table_views(records: list[dict], evals: dict[str, dict] | None = None,
                by_cell_claims: dict[str, list[str]] | None = None) -> list[dict]:
    evals, by_cell_claims = evals or {}, by_cell_claims or {}
    by_cell: dict[tuple, list[dict]] = {}
    for r in records:
        by_cell.setdefault(schema.cell_key(r), []).append(r)
    views = []
    for name, t in paper_data.load_all().items():
        columns: list[str] = []
        for c in t["cells"]:
            if c["column"] not in columns:
                columns.append(c["column"])
        rows: dict[str, dict] = {}
        counts = {"pass": 0, "fail": 0, "not run": 0, "no paper value": 0, "scaled": 0}
        table_recs: list[dict] = []
        for c in t["cells"]:
            recs = by_cell.get(schema.cell_key(c), [])
            anchor = cell_anchor(c["table"], c["row"], c["column"])
            entry = {"column": c["column"], "anchor": anchor, "paper": _fmt(c["value"], c["std"]), "ours": "",
                     "verdict": "not run", "compare": "", "problems": [], "claims": by_cell_claims.get(anchor, []),
                     "note": "", "dataset": None}
            if recs:
                r = recs[-1]
                table_recs += recs
                cmp = compare.compare(r, c)
                entry.update(ours=_fmt(r["value"], r["std"], r["n_runs"]), dataset=r["setting"].get("dataset"),
                             verdict={True: "pass", False: "fail", None: "no paper value"}[cmp.passed],
                             problems=cell_problems([r], evals))
                if r["setting"].get("scale") and cmp.passed is not None:
                    entry["verdict"] = "scaled"  # a scaled-down run is not held to the paper-scale tolerance
                elif cmp.difference is not None:
                    entry["compare"] = f"{cmp.difference:+.2f} (tolerance ±{compare.tolerance_for(c):.2f})"
                if len(recs) > 1:
                    entry["note"] = f"{len(recs)} results for this cell; the last is shown"
            elif c["missing"]:
                entry["verdict"] = "no paper value"
            entry["colour"] = COLOURS[entry["verdict"]]
            counts[entry["verdict"]] += 1
            rows.setdefault(c["row"], {"row": c["row"], "cells": {}, "measured": False})
            rows[c["row"]]["cells"][c["column"]] = entry
            rows[c["row"]]["measured"] |= bool(recs)
        for row in rows.values():
            row["cells"] = [row["cells"].get(col) or {"column": col, "anchor": "", "paper": "", "ours": "",
                                                      "verdict": "", "compare": "", "problems": [], "claims": [],
                                                      "note": "", "colour": "", "dataset": None}
                            for col in columns]
            datasets = {c["dataset"] for c in row["cells"] if c["dataset"]}
            row["label"], row["paper_label"] = row["row"], ""
            if datasets and not all(is_cifar10(d) for d in datasets) and "CIFAR-10" in row["row"]:
                # the paper's row name says CIFAR-10; our numbers are on other data: say which
                row["label"] = re.sub(r"CIFAR-10\s*(/|:)?\s*", "", row["row"]).strip() or row["row"]
                row["paper_label"] = row["row"]
            row["data"] = ", ".join(dataset_label(d) for d in sorted(datasets))
        measured = [r for r in rows.values() if r["measured"]]
        live = [i for i, col in enumerate(columns) if any(r["cells"][i]["ours"] for r in measured)]
        for r in measured:
            r["shown"] = [r["cells"][i] for i in live]
        for r in rows.values():
            r.setdefault("shown", r["cells"])
        dead = [columns[i] for i in range(len(columns)) if i not in live] if measured else []
        folded = list(rows.values()) if dead else [r for r in rows.values() if not r["measured"]]
        all_ds = {d for r in table_recs for d in [r["setting"].get("dataset")] if d}
        scales = sorted({_scale_train_part(str(r["setting"].get("scale"))) for r in table_recs
                         if r["setting"].get("scale")})
        views.append({"id": name, "title": t["title"], "number": name[5:],
                      "source": f"{t['file']} line {t['caption_line']}", "columns": columns,
                      "live_columns": [columns[i] for i in live] if measured else columns, "dead_columns": dead,
                      "show_data": len(all_ds) > 1 or any(not is_cifar10(d) for d in all_ds),
                      "n_not_run_rows": sum(1 for r in rows.values() if not r["measured"]),
                      "measured": measured, "folded": folded,
                      "notes": [plain(n) for n in t["notes"]], "counts": counts,
                      "scale": "; ".join(s for s in scales if s), "eval_scale": eval_scale(table_recs),
                      "datasets": ", ".join(dataset_label(d) for d in sorted({r["setting"].get("dataset")
                                                                              for r in table_recs} - {None}))})
    views.sort(key=lambda v: not v["measured"])  # tables with results first
    return views


# ------------------------------------------------------------------------------------------------ setting
def _teacher_keys(records: list[dict]) -> list[str]:
    keys = [r["setting"].get("teacher") for r in records if r["setting"].get("teacher")]
    return list(dict.fromkeys(["teacher", *keys]))


def teacher_view(records: list[dict], evals: dict[str, dict], runs: dict) -> dict:
    """The teacher's own accuracy (the ceiling of any transfer): its records (setting.run == teacher) if any, else
    its evaluation files."""
    keys = _teacher_keys(records)
    recs = [r for r in records if r["setting"].get("run") in keys]
    acc: dict[str, str] = {}
    n_eval: set = set()
    source = ""
    if recs:
        for r in recs:
            acc.setdefault(attack_label(r["setting"].get("attack")), _fmt(r["value"], r["std"], r["n_runs"]))
            n_eval.add(r["setting"].get("eval_n"))
        source = "teacher records"
    else:
        found = []
        for stem, ev in sorted(evals.items()):
            m = EVAL_STEM.match(stem)
            if m and m.group("run") in keys and not m.group("aside"):
                found.append(stem)
                acc.setdefault("clean", _fmt(100 * ev["clean"]["accuracy"]))
                for a, res in ev.get("attacks", {}).items():
                    acc.setdefault(attack_label(a), _fmt(100 * res["robust_accuracy"]))
                n_eval.add(ev.get("n_eval"))
        source = ", ".join(f"evals/{s}.json" for s in found)
    if not acc:
        return {"present": False, "keys": keys}
    model = ""
    for (k, _s), run in sorted(runs.items()):
        if k in keys and run.get("config"):
            model = run["config"].get("model", "")
            break
    items = [{"what": "clean", "value": acc.pop("clean", "not recorded")}]
    pgd = [k for k in acc if k.startswith("PGD")]
    items += [{"what": k, "value": acc.pop(k)} for k in pgd]
    items.append({"what": "AutoAttack", "value": acc.pop("AutoAttack", "not recorded")})
    items += [{"what": k, "value": v} for k, v in acc.items()]
    return {"present": True, "keys": keys, "model": model, "accs": items, "source": source,
            "n_eval": ", ".join(str(n) for n in sorted(x for x in n_eval if x))}


def _student_epochs(recs: list[dict]) -> str:
    """The students' epochs: when most methods share one number and a few differ (Free-AT counts passes, each
    replayed m times), "6 (free_at: 1)"; a study of several epoch counts lists them all."""
    by_method: dict[str, set] = {}
    for r in recs:
        e = (r.get("config") or {}).get("train", {}).get("epochs")
        if e is not None:
            by_method.setdefault(r["setting"].get("method") or "other", set()).add(e)
    if not by_method:
        return ""
    single = [next(iter(v)) for v in by_method.values() if len(v) == 1]
    common = max(set(single), key=single.count) if single else None
    odd = {m: v for m, v in by_method.items() if v != {common}}
    if not odd:
        return str(common)
    if common is None or len(odd) * 2 >= len(by_method):
        return ", ".join(map(str, sorted(set().union(*by_method.values()))))
    return f"{common} (" + "; ".join(f"{m}: {', '.join(map(str, sorted(v)))}" for m, v in sorted(odd.items())) + ")"


def setting_view(results: list[dict], records: list[dict], evals: dict, runs: dict) -> list[dict]:
    rows: list[dict] = []
    accs = [r for r in records if r["table"] not in ("bench", "fig4")]
    dsets = sorted({r["setting"].get("dataset") for r in records} - {None})
    rows.append({"what": "data", "value": ", ".join(dataset_label(d) for d in dsets) or "–"})
    fracs = sorted({(r.get("config") or {}).get("train", {}).get("data_fraction") for r in accs} - {None})
    if fracs:
        rows.append({"what": "student training data", "value": ", ".join(f"{f * 100:g}%" for f in fracs)
                     + " of the training set (per run config)"})
    scales = sorted({_scale_train_part(str(r["setting"]["scale"])) for r in records if r["setting"].get("scale")})
    scales += sorted({_scale_train_part(str(p["provenance"]["scale"])) for p in results
                      if p["provenance"].get("scale")} - set(scales))
    if scales:
        rows.append({"what": "scale (as recorded)", "value": "; ".join(scales)})
    teacher_keys = set(_teacher_keys(records))
    studs = [r for r in accs if r["table"] != "teacher" and r["setting"].get("run") not in teacher_keys]
    students = sorted({r["setting"].get("student") for r in studs if r["setting"].get("student")})
    rows.append({"what": "students", "value": ", ".join(students) or "–"})
    methods = sorted({r["setting"].get("method") for r in studs if r["setting"].get("method")})
    if methods:
        rows.append({"what": "methods", "value": ", ".join(methods)})
    epochs_text = _student_epochs(studs)
    if epochs_text:
        rows.append({"what": "student epochs", "value": epochs_text})
    seeds = sorted({s for r in records for s in r["seeds"]})
    rows.append({"what": "seeds", "value": ", ".join(map(str, seeds)) or "–"})
    rows.append({"what": "evaluation", "value": eval_scale(accs) or "–"})
    cost = []
    for p in results:
        pv = p["provenance"]
        tr, ev = pv.get("train_wall_time_s") or {}, pv.get("eval_wall_time_s") or {}
        parts = [f"{pv['tier']} tier on {pv['machine']}"]
        if pv.get("plan_compute_s"):
            parts.append(f"{_secs(pv['plan_compute_s'])} of compute for the whole plan")
        if tr:
            parts.append(f"training {_secs(sum(tr.values()))} over {len(tr)} runs")
        if ev:
            parts.append(f"evaluation {_secs(sum(ev.values()))} over {len(ev)} evaluations")
        parts.append(f"wall time of the last (resumed) call {_secs(pv['wall_time_s'])}")
        cost.append(", ".join(parts))
    rows.append({"what": "compute cost", "value": "; ".join(cost) or "–"})
    return rows


# ------------------------------------------------------------------------------------------------ figures
def _by_run(records: list[dict]) -> dict[str, dict[str, dict]]:
    """run key -> attack -> the record (first seen) for clean/robust accuracy records."""
    out: dict[str, dict[str, dict]] = {}
    for r in records:
        run, a = r["setting"].get("run"), r["setting"].get("attack")
        if run and a and a not in ("step_time_s",) and r["table"] != "bench":
            out.setdefault(run, {}).setdefault(a, r)
    return out


def _std(r: dict | None) -> float | None:
    return r["std"] if r and r["n_runs"] > 1 else None


def _common_pgd(byrun: dict[str, dict[str, dict]]) -> str | None:
    """The PGD attack most runs have a record of (ties: fewer steps first), so one axis never mixes PGD-20 and
    PGD-100."""
    count: dict[str, int] = {}
    for att in byrun.values():
        for a in att:
            if a.startswith("pgd"):
                count[a] = count.get(a, 0) + 1
    if not count:
        return None
    steps = lambda a: int(re.sub(r"\D", "", a.split("x")[0]) or 0)  # noqa: E731
    return min(count, key=lambda a: (-count[a], steps(a)))


def _pgd(attacks: dict[str, dict]) -> tuple[str | None, dict | None]:
    for a in sorted(attacks):
        if a.startswith("pgd"):
            return a, attacks[a]
    return None, None


def figure_views(records: list[dict], profiles: dict, evals: dict, runs: dict, teacher: dict) -> list[dict]:
    """Every figure of the report, one function per figure; a figure without data is left out (the report names it
    among the figures not drawn)."""
    datasets = sorted({r["setting"].get("dataset") for r in records} - {None})
    data = ", ".join(dataset_label(d) for d in datasets) or "the plan's data"
    byrun = _by_run(records)
    figs = [f for f in (_fig_scatter(byrun, teacher, data), _fig_ablations(records, data), _fig_aa_gap(byrun, evals),
                        _fig3(records, data), _fig7(records, data), _fig4(profiles), _fig_training(runs))
            if f is not None]
    return figs


def _fig_scatter(byrun: dict, teacher: dict, data: str) -> dict | None:
    """Clean vs robust accuracy of every run (one PGD attack on the robust axis)."""
    from reports import figures as F

    points, pgd_names, n_eval, without = [], set(), set(), []
    common = _common_pgd(byrun)  # one robust axis: the PGD attack most runs were evaluated with
    for run, att in sorted(byrun.items()):
        rob = att.get(common) if common else None
        clean = att.get("clean")
        if clean is None:
            continue
        if rob is None:
            if _pgd(att)[1] is not None:
                without.append(run)
            continue
        pgd_names.add(attack_label(common))
        n_eval.add(rob["setting"].get("eval_n"))
        method = "teacher" if run in teacher.get("keys", []) else rob["setting"].get("method")
        points.append({"label": run, "clean": clean["value"], "clean_std": _std(clean), "robust": rob["value"],
                       "robust_std": _std(rob), "method": method})
    if teacher.get("present") and not any(p["method"] == "teacher" for p in points):
        vals = {i["what"]: i["value"] for i in teacher["accs"]}
        pg = next((k for k in vals if k.startswith("PGD")), None)
        try:
            points.append({"label": "teacher", "clean": float(vals["clean"].split()[0]),
                           "robust": float(vals[pg].split()[0]), "method": "teacher"})
        except (KeyError, ValueError, AttributeError, TypeError):
            pass
    note = f"{'/'.join(sorted(pgd_names)) or 'PGD'}, {', '.join(str(n) for n in sorted(x for x in n_eval if x))} test images"
    return {"id": "fig-scatter", "title": "Clean vs robust accuracy of every run",
            "caption": f"Each point is one run (mean over its seeds; bars: ± std over seeds) on {data}; "
                       f"robust = {note}. Up and to the right is better; the teacher is the ceiling."
                       + (f" Not shown (no {attack_label(common)} record): {', '.join(without)}." if without
                          else ""),
            "svg": F.scatter_clean_robust(points, eval_note=note)}


def _fig_ablations(records: list[dict], data: str) -> dict | None:
    """Ablation bars of Tables 6, 7 and 9, a panel only for a table the set ran."""
    from reports import figures as F

    panels = []
    for tname, title in (("table6", "Table 6: components"), ("table7", "Table 7: blocks"),
                         ("table9", "Table 9: transforms")):
        recs = [r for r in records if r["table"] == tname]
        groups: list[str] = []
        vals: dict[tuple[str, str], dict] = {}
        for r in recs:
            g = r["column"] if _is_metric_row(r["row"]) else r["row"]
            if g not in groups:
                groups.append(g)
            vals[(g, _metric(r))] = r
        bars = [{"label": lab, "colour": col, "values": [vals[(g, m)]["value"] if (g, m) in vals else None for g in groups],
                 "stds": [_std(vals.get((g, m))) for g in groups]}
                for m, lab, col in (("clean", "clean", F.CLEAN), ("robust", "robust (PGD)", F.ROBUST))]
        if len(groups) < 2:  # a table the set did not run holds at most the shared MixACM run: nothing to compare
            continue
        panels.append({"title": title, "groups": [g.replace("teacher ", "T: ").replace(" / student ", " / S: ")
                                                  for g in groups], "bars": bars})
    return {"id": "fig-ablations", "title": "Ablations (Tables 6, 7, 9), ours",
            "caption": f"Accuracy (%) on {data}; bars: mean over seeds, whiskers: ± std over seeds; "
                       f"n/r = not run. Scaled-down runs: compare bars within a panel, not with the paper.",
            "svg": F.grouped_bars(panels, ylabel="accuracy (%)")}


def _fig_aa_gap(byrun: dict, evals: dict) -> dict | None:
    """AutoAttack vs PGD per model: on the same model and images where the evaluations' masks pair them
    (``verification.masking``), else the records' means (then the caption says the images differ); None without an
    AutoAttack evaluation."""
    from reports import figures as F
    from verification.masking import autoattack_vs_pgd

    pairs = autoattack_vs_pgd(evals)
    if pairs:
        pgd_label = "/".join(sorted({attack_label(p["pgd_attack"]) for p in pairs}))
        broken = sum(p["pgd_only"] for p in pairs)
        groups = [p["eval"].removesuffix("-aa") for p in pairs]
        pgd_v, aa_v = [p["pgd"] for p in pairs], [p["autoattack"] for p in pairs]
        pgd_s = aa_s = [None] * len(pairs)
        title = "AutoAttack vs PGD per model, on the same images"
        caption = (f"Robust accuracy (%) of each model under {pgd_label} and AutoAttack on the same "
                   f"{', '.join(str(n) for n in sorted({p['n'] for p in pairs}))} test images (one bar pair per "
                   "evaluated model and seed). A large gap means PGD overestimates robustness; "
                   + ("no image that PGD breaks survives AutoAttack." if not broken else
                      f"{broken} images that PGD breaks survive AutoAttack, which should be the stronger attack."))
    else:
        groups, pgd_v, aa_v, pgd_s, aa_s = [], [], [], [], []
        for run, att in sorted(byrun.items()):
            rob = _pgd(att)[1] if "autoattack" in att else None
            if rob is None:
                continue
            groups.append(run)
            pgd_v.append(rob["value"])
            pgd_s.append(_std(rob))
            aa_v.append(att["autoattack"]["value"])
            aa_s.append(_std(att["autoattack"]))
        aa_n = sorted({att["autoattack"]["setting"].get("eval_n") for att in byrun.values() if "autoattack" in att}
                      - {None})
        pgd_label, title = "PGD", "AutoAttack vs PGD per model"
        caption = ("Robust accuracy (%) under PGD and AutoAttack for every model evaluated with both "
                   f"(AutoAttack on {', '.join(map(str, aa_n)) or 'an unrecorded number of'} test images; "
                   "± std over seeds). The evaluations kept no per-image masks, so the two bars need not "
                   "cover the same images or seeds; a large gap means PGD overestimates robustness.")
    if not groups:  # no AutoAttack evaluation: no panel (and no caption with an unknown image count)
        return None
    return {"id": "fig-aa-gap", "title": title, "caption": caption,
            "svg": F.grouped_bars([{"title": "", "groups": groups, "bars": [
                {"label": pgd_label, "values": pgd_v, "stds": pgd_s, "colour": F.ROBUST},
                {"label": "AutoAttack", "values": aa_v, "stds": aa_s, "colour": F.AA}]}],
                ylabel="robust accuracy (%)")}


def _fig3(records: list[dict], data: str) -> dict | None:
    """Fig. 3: accuracy against the fraction of training data."""
    from reports import figures as F

    series, refs = [], []
    for method, dash in (("mixacm", False), ("pgd7_at", True)):
        for col, colour in (("clean", F.CLEAN), ("robust", F.ROBUST)):
            pts = sorted(((r["setting"].get("data_fraction"), r) for r in records
                          if r["table"] == "fig3" and r["row"] == method and r["column"] == col
                          and r["setting"].get("data_fraction") is not None), key=lambda p: p[0])
            label = f"{'MixACM' if method == 'mixacm' else 'PGD-7 AT'} {col}"
            if len(pts) == 1 and method != "mixacm":
                refs.append({"label": f"{label} ({pts[0][0] * 100:g}% data)", "y": pts[0][1]["value"],
                             "std": _std(pts[0][1]), "colour": colour})
            elif pts:
                series.append({"label": label, "x": [p[0] for p in pts], "y": [p[1]["value"] for p in pts],
                               "std": [_std(p[1]) for p in pts], "colour": colour, "dash": dash})
    full = sorted({(r.get("config") or {}).get("train", {}).get("data_fraction") for r in records
                   if r["table"] == "fig3" and r["setting"].get("data_fraction") == 1.0} - {None})
    full_txt = f" (100% = {', '.join(f'{f * 100:g}%' for f in full)} of the {data} training set)" if full else ""
    return {"id": "fig3", "title": "Fig. 3: accuracy vs amount of training data",
            "caption": f"x: fraction of the plan's full training data{full_txt}; y: accuracy (%) on {data}, "
                       "± std over seeds. Dotted lines: PGD-7 AT trained on the full plan data. "
                       "Paper: figure, values not in text.",
            "svg": F.lines_with_errors(series, refs=refs, pct_x=True, ylabel="accuracy (%)",
                                       xlabel="fraction of the plan's full training data")}


def _fig7(records: list[dict], data: str) -> dict | None:
    """Supp. Fig. 7(a): accuracy against alpha_acm."""
    from reports import figures as F

    series = []
    for col, colour in (("clean", F.CLEAN), ("robust", F.ROBUST)):
        pts = sorted(((r["setting"].get("alpha_acm"), r) for r in records
                      if r["table"] == "fig7" and r["column"] == col and r["setting"].get("alpha_acm")),
                     key=lambda p: p[0])
        if pts:
            series.append({"label": col, "x": [p[0] for p in pts], "y": [p[1]["value"] for p in pts],
                           "std": [_std(p[1]) for p in pts], "colour": colour})
    return {"id": "fig7", "title": "Supp. Fig. 7(a): accuracy vs alpha_acm (only-ACM loss)",
            "caption": f"Accuracy (%) on {data} against the ACM loss weight (log scale), ± std over seeds. "
                       "Paper: figure, values not in text.",
            "svg": F.lines_with_errors(series, logx=True, xlabel="alpha_acm (ACM loss weight)",
                                       ylabel="accuracy (%)")}


def _fig4(profiles: dict) -> dict | None:
    """Supp. Fig. 4: sorted ACM profiles per block."""
    from reports import figures as F

    panels = []
    for block, models in sorted(profiles.items()):
        ser = []
        for i, (name, prof) in enumerate(models.items()):
            p = sorted(float(v) for v in prof)
            ser.append({"label": name, "x": list(range(1, len(p) + 1)), "y": p,
                        "colour": {"teacher": "#000000", "student": F.CLEAN, "natural": "#2ca02c"}.get(
                            name, F.COLOURS[i % len(F.COLOURS)]), "dash": name == "natural"})
        panels.append({"title": block, "series": ser})
    return {"id": "fig4", "title": "Supp. Fig. 4: sorted activated channel maps (teacher, student, natural)",
            "caption": "Mean ACM value per channel, channels sorted by value, per block. A distilled student "
                       "should lie closer to the teacher than the naturally trained model. Paper: figure, "
                       "values not in text.",
            "svg": F.small_multiples(panels, xlabel="channel (sorted)", ylabel="mean ACM", legend_cols=3)}


def _fig_training(runs: dict) -> dict | None:
    """Training curves from every run's metrics.jsonl."""
    from reports import figures as F

    keys = sorted({k for k, _ in runs})
    method_of = {k: ((run.get("config") or {}).get("method")) for (k, _), run in runs.items()}
    style = F.run_styles([(k, method_of.get(k)) for k in keys])
    panels = []
    for metric, title in (("loss", "training loss"), ("train_acc", "train accuracy (%)"),
                          ("val_acc", "validation accuracy (%)"), ("val_rob", "validation robust acc. (%)")):
        ser = []
        for (k, s), run in sorted(runs.items()):
            rows = [m for m in run["metrics"] if m.get(metric) is not None and m.get("epoch") is not None]
            if rows:
                scale = 100.0 if metric != "loss" else 1.0
                first = s == min(ss for kk, ss in runs if kk == k)  # one legend entry per run: its first seed
                ser.append({"label": k if first else f"{k} (seed {s})", "x": [m["epoch"] for m in rows],
                            "y": [scale * m[metric] for m in rows], "colour": style[k]["colour"],
                            "style": style[k]["style"], "marker": style[k]["marker"], "legend": first})
        panels.append({"title": title, "series": ser})
    return {"id": "fig-training", "title": "Training curves (metrics.jsonl of every run)",
            "caption": "Per epoch, one line per run and seed; colour and marker by method family (blue: MixACM "
                       "and its ablations, red: adversarial training, green: natural, orange: KD only, black: "
                       "teacher), one shade and line style per run.",
            "svg": F.small_multiples(panels, xlabel="epoch", ylabel="", ncols=4, legend_cols=6)}


# ------------------------------------------------------------------------------------------------ other views
def scaling_reading(s: dict) -> str:
    """What the table says, in words chosen by the numbers: the robust gap's trend from its slope's interval
    (widens / narrows only when the interval excludes 0), and, when PGD-7 AT students outgrow the teacher's robust
    accuracy, that the distilled students are measured against a teacher weaker than the baseline."""
    sl, rows = s["slope"].get("robust"), s["rows"]
    if sl is None or not rows:
        return ""
    lo, hi = sl["ci95"]
    if hi < 0:
        trend = "widens against MixACM as training grows (the slope's interval lies below 0)"
    elif lo > 0:
        trend = "narrows as training grows (the slope's interval lies above 0)"
    else:
        trend = "shows no trend that this study can resolve (the slope's interval contains 0)"
    first, last = rows[0], rows[-1]
    out = [f"Reading: the robust gap {trend}: {first['robust']['delta']:+.2f} pp at {first['epochs']} epochs, "
               f"{last['robust']['delta']:+.2f} pp at {last['epochs']}."]
    above = [r for r in rows if r["at_fraction_of_teacher"] > 1]
    if above:
        top = max(r["mixacm_fraction_of_teacher"] for r in rows)
        out[-1] += (f" PGD-7 AT students exceed the teacher's robust accuracy from {above[0]['epochs']} epochs on "
                    f"(up to {max(r['at_fraction_of_teacher'] for r in rows):.2f} of it) while MixACM students reach "
                    f"at most {top:.2f} of it: a distilled student is bounded by its teacher, and this teacher is "
                    f"weaker than the baseline it is compared with, which is not the paper's setting (a robust "
                    f"teacher far above what adversarial training reaches at the student's size). The gap here "
                    f"measures this teacher's ceiling as much as MixACM.")
    return out[-1]



def scaling_view(s: dict | None) -> dict | None:
    """The epoch-scaling study's rows (``scaling.json`` beside the results), formatted for the report."""
    if not s:
        return None
    gap = lambda g: f"{g['delta']:+.2f} [{g['ci95'][0]:+.2f}, {g['ci95'][1]:+.2f}]"  # noqa: E731
    slopes = [{"metric": m, "text": f"{sl['slope']:+.2f} pp [{sl['ci95'][0]:+.2f}, {sl['ci95'][1]:+.2f}]",
               "method": sl["method"]} for m, sl in s["slope"].items() if sl]
    return {"test": s["test"], "teacher_robust": f"{s['teacher_robust']:.2f} %", "slopes": slopes,
            "rows": [{"epochs": r["epochs"], "clean": gap(r["clean"]), "robust": gap(r["robust"]),
                      "rob": f"{r['robust']['mixacm']['mean']:.2f} / {r['robust']['pgd_at']['mean']:.2f}",
                      "clean_acc": f"{r['clean']['mixacm']['mean']:.2f} / {r['clean']['pgd_at']['mean']:.2f}",
                      "mix_frac": f"{r['mixacm_fraction_of_teacher']:.2f}",
                      "at_frac": f"{r['at_fraction_of_teacher']:.2f}"} for r in s["rows"]],
            "reading": scaling_reading(s)}


def theory_view(path: Path | None) -> dict:
    if path is None or not path.exists():
        return {"present": False, "path": str(path) if path else "", "claims": [], "errata": [], "counts": []}
    from theory.report import key_number

    obj = json.loads(path.read_text(encoding="utf-8"))
    cl = [{"id": c.get("id", "?"), "statement": plain(c.get("statement", "")), "source": plain(c.get("source", "")),
           "verdict": c.get("verdict", "?"), "key": key_number(c),
           "colour": {"holds-exact": "#1b7f3b", "holds-certified": "#1b7f3b", "holds-approximately": "#4d7f1b",
                      "fails": "#b3261e"}.get(c.get("verdict"), "#9a6700")} for c in obj.get("claims", [])]
    counts: dict[str, int] = {}
    for c in cl:
        counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
    errata = [{k: plain(e.get(k, "")) for k in ("location", "text_says", "correct", "evidence")}
              for e in obj.get("errata", [])]
    return {"present": True, "path": str(path), "claims": cl, "errata": errata,
            "counts": [{"verdict": k, "n": v} for k, v in counts.items()]}


def _flat(d: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
    elif isinstance(d, list):
        out[prefix[:-1]] = ", ".join(str(x) for x in d) if d else "[]"
    else:
        out[prefix[:-1]] = "–" if d is None else (f"{d:.6g}" if isinstance(d, float) else str(d))
    return out


def machine_text(m: Any) -> str:
    """A run's machine as a reader wants it: 'host vm · platform Linux-... · cpus 2' from meta.json's dict."""
    if isinstance(m, dict):
        return " · ".join(f"{k} {v}" for k, v in m.items() if v not in (None, "", [], {}))
    return str(m or "")


def _iso(t: Any) -> str:
    if isinstance(t, (int, float)):
        return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="seconds")
    return str(t or "–")


def provenance_view(results: list[dict], records: list[dict], runs: dict) -> list[dict]:
    out = []
    for r in results:
        p = r["provenance"]
        tr, ev = p.get("train_wall_time_s") or {}, p.get("eval_wall_time_s") or {}
        # one config per run key (records of one run share it); seed is the only per-seed difference
        cfg_by_run: dict[str, dict[str, str]] = {}
        for rec in r["results"]:
            run = rec["setting"].get("run") or f"{rec['table']}/{rec['row']}"
            if rec["config"]:
                flat = {k: v for k, v in _flat(rec["config"]).items() if not k.endswith(".seed")}
                cfg_by_run.setdefault(run, flat)
        keys = sorted({k for c in cfg_by_run.values() for k in c})
        common = {k: v for k in keys if len({c.get(k) for c in cfg_by_run.values()}) == 1
                  for v in [next(iter(cfg_by_run.values())).get(k)]} if cfg_by_run else {}
        varying = [k for k in keys if k not in common]
        run_keys = sorted({k.rsplit("-s", 1)[0] for k in tr} | {k for k, _ in runs} | set(cfg_by_run)
                          | {k.rsplit("-s", 1)[0] for k in ev})
        per_run = []
        commits: set[str] = set()
        for key in run_keys:
            seeds = sorted({int(m.group(1)) for k in list(tr) + list(ev)
                            for m in [re.fullmatch(re.escape(key) + r"-s(\d+)(?:-aa)?", k)] if m}
                           | {s for k, s in runs if k == key})
            for s in seeds or [None]:
                run = runs.get((key, s)) or {}
                meta = run.get("meta") or {}
                git = meta.get("git") or {}
                commit = git.get("commit") if isinstance(git, dict) else str(git or "")
                if commit:
                    commits.add(commit + ("+dirty" if isinstance(git, dict) and git.get("dirty") else ""))
                tag = f"{key}-s{s}"
                per_run.append({"run": key, "seed": "–" if s is None else s,
                                "commit": (commit[:10] + ("+dirty" if git.get("dirty") else "")) if commit else "",
                                "started": _iso(meta.get("started")) if meta else "",
                                "machine": machine_text(meta.get("machine")), "device": str(meta.get("device") or ""),
                                "train": _secs(tr.get(tag)) if tag in tr else "–",
                                "eval": _secs(ev.get(tag)) if tag in ev else "–",
                                "eval_aa": _secs(ev.get(tag + "-aa")) if tag + "-aa" in ev else "",
                                "epochs": len(run.get("metrics") or [])})
        seeds = sorted({s for rec in r["results"] for s in rec["seeds"]})
        out.append({"path": r["path"], "tier": p["tier"], "commit": p["commit"], "machine": p["machine"],
                    "python": p["python"], "torch": p["torch"], "started": p["started"], "plan": p.get("plan", ""),
                    "wall_time": _secs(p["wall_time_s"]) + (f" (whole plan, all sessions: {_secs(p['plan_compute_s'])})"
                                                            if p.get("plan_compute_s") else ""),
                    "n_records": len(r["results"]), "seeds": seeds, "runs": per_run,
                    "run_commits": sorted(commits),
                    "has_meta": any(x["commit"] for x in per_run),
                    "config_common": [{"key": k, "value": v} for k, v in common.items()],
                    "config_varying": varying,
                    "config_runs": [{"run": k, "vals": [c.get(v, "–") for v in varying]}
                                    for k, c in sorted(cfg_by_run.items())]})
    return out


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
            row = rows.setdefault(r["row"], {"run": r["row"], "choice": plain(r["setting"].get("choice") or ""),
                                             "clean": "not run", "robust": "not run"})
            row[r["column"]] = _fmt(r["value"], r["std"], r["n_runs"])
    return list(rows.values())


def _env() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_index(data: dict) -> str:
    """The cross-set page (``reports/recorded/index.html``) from ``reports.summary.index_data``."""
    return _env().get_template("index.html.j2").render(**data, colours=COLOURS)


def build(results_paths: list[str], theory_path: Path | None, out: Path) -> Path:
    results, records, profiles = load_inputs(results_paths)
    evals, runs = load_run_files(results_paths)
    cell_ids = {cell_anchor(c["table"], c["row"], c["column"]) for c in paper_data.all_cells()}
    claims = claim_views(records, cell_ids)
    teacher = teacher_view(records, evals, runs)
    figs = figure_views(records, profiles, evals, runs, teacher)
    page = _env().get_template("report.html.j2").render(
        tables=table_views(records, evals, claims_by_cell(claims)), claims=claims, tally=tally(claims),
        theory=theory_view(theory_path), provenance=provenance_view(results, records, runs),
        figures=[f for f in figs if f["svg"]], figures_not_drawn=[f["title"] for f in figs if not f["svg"]],
        bench=benchmark_view(records),
        choices=choice_view(records), setting=setting_view(results, records, evals, runs), teacher=teacher,
        selfchecks=selfcheck_view(evals), train_warnings=training_warnings(runs),
        scaling=scaling_view(load_scaling(results_paths)),
        n_records=len(records), inputs=[r["path"] for r in results], tolerance_rule=compare.RULE,
        claim_rule=plain(claims_mod.__doc__.split("Decision rule (declared once).")[1].split("Inputs are")[0].strip()),
        colours=COLOURS)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    from mixacm.cli_parsers import parser

    ap = parser("mixacm report", __doc__.split("\n")[0])
    ap.add_argument("--results", nargs="*", default=[], help="results JSON files or directories")
    ap.add_argument("--theory", default=str(DEFAULT_THEORY), help="theory JSON (skipped when absent)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="the HTML file to write")
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
