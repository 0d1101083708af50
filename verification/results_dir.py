"""The results directory of a plan (``verification.runner.run_plan``) and of a recorded set: its layout, written
and read only through this module, and the loaders the claims, the record and the report use.

    OUT/results.json                    records (``verification/schema.py``) + provenance
    OUT/claims.json                     verdicts (``verification/claims.py``)
    OUT/runs/<key>/seed<s>/             a training run: config.json, meta.json, summary.json, metrics.jsonl, *.pt
    OUT/evals/<key>-s<seed>[-aa][-eps<E>_255].json     an evaluation (schema mixacm.evaluate)
    OUT/evals/state/<stem>-n<N>/        its resumable per-batch state
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from . import schema

RUNS, EVALS = "runs", "evals"
EVAL_STEM = re.compile(r"^(?P<run>.+)-s(?P<seed>\d+)(?P<suffix>(?:-aa)?(?:-eps[\d.]+_255)?)(?P<aside>-n\d+)?$")


def run_dir(out: Path, key: str, seed: int) -> Path:
    """OUT/runs/<key>/seed<seed>: one training run."""
    return Path(out) / RUNS / key / f"seed{seed}"


def eval_stem(key: str, seed: int, suffix: str = "") -> str:
    """<key>-s<seed><suffix>: an evaluation's name (suffix "-aa" for AutoAttack, "-eps<E>_255" for another radius)."""
    return f"{key}-s{seed}{suffix}"


def eval_path(out: Path, key: str, seed: int, suffix: str = "") -> Path:
    return Path(out) / EVALS / f"{eval_stem(key, seed, suffix)}.json"


def eval_state_dir(out: Path, key: str, seed: int, suffix: str, n: int | None) -> Path:
    return Path(out) / EVALS / "state" / f"{eval_stem(key, seed, suffix)}-n{n}"


def input_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files += sorted(path.rglob("*.json"))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"--results {p}: no such file or directory")
    return files


def load_inputs(paths: list[str]) -> tuple[list[dict], list[dict], dict]:
    """-> (results files, records, acm profiles). Invalid results files raise SchemaError naming the file."""
    results, records, profiles = [], [], {}
    for f in input_files(paths):
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


def load_scaling(paths: list[str]) -> dict | None:
    """The epoch-scaling analysis (``scaling.json``, written by ``verification.scaling``) in the directory of the
    first input that has one, else None."""
    for p in paths:
        path = Path(p)
        f = (path if path.is_dir() else path.parent) / "scaling.json"
        if f.is_file():
            return json.loads(f.read_text(encoding="utf-8"))
    return None


def load_run_files(paths: list[str]) -> tuple[dict[str, dict], dict[tuple[str, int], dict]]:
    """Evaluations (``evals/<run>-s<seed>[-aa][-n<N>].json``, schema mixacm.evaluate) and run directories
    (``runs/<key>/seed<s>/``) in the directories of the inputs (a results file: its directory)."""
    roots = []
    for p in paths:
        path = Path(p)
        root = path if path.is_dir() else path.parent
        if root not in roots:
            roots.append(root)
    evals: dict[str, dict] = {}
    runs: dict[tuple[str, int], dict] = {}
    for root in roots:
        for f in sorted(root.rglob("evals/*.json")):
            try:
                obj = json.loads(f.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(obj, dict) and str(obj.get("schema", "")).startswith("mixacm.evaluate"):
                evals[f.stem] = {**obj, "path": str(f)}
        for d in sorted(root.rglob("runs/*/seed*")):
            if not d.is_dir() or not d.name[4:].isdigit():
                continue
            entry: dict[str, Any] = {"dir": str(d)}
            for name in ("meta", "config", "summary"):
                try:
                    entry[name] = json.loads((d / f"{name}.json").read_text(encoding="utf-8"))
                except (OSError, json.JSONDecodeError):
                    entry[name] = None
            rows = []
            if (d / "metrics.jsonl").is_file():
                for ln in (d / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
                    try:
                        rows.append(json.loads(ln))
                    except json.JSONDecodeError:
                        continue
            entry["metrics"] = rows
            runs[(d.parent.name, int(d.name[4:]))] = entry
    return evals, runs
