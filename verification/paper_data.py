"""Loader of the paper's numbers: ``verification/paper/table{1..10}.json`` (+ ``figures.json``), schema-checked.

One JSON file per table: ``{"table", "title", "file", "caption_line", "cells": [...], "notes": [...]}``. A cell is
``{"table", "row", "column", "value", "std", "missing", "metric", "setting", "source", ...}`` where

- ``value`` is the printed number (percent; ``None`` with ``missing: true`` for a '-' cell), ``std`` the printed ±,
- ``metric`` is "clean" | "robust" | "size_ratio",
- ``setting`` holds ``SETTING_KEYS`` (dataset, teacher, teacher_robustbench, teacher_dataset, student, method,
  attack, eps, data_fraction) plus table-specific keys (components, blocks, transform, feature_loss, train_eps, ...),
- ``source`` = ``{"file", "line", "col_index"}`` locates the number in ``../shared/paper/`` (``also_in`` for the
  main paper's duplicate of Supp. Tables 6/7), ``reported_by`` is "ours" (the authors' run) or "cited".

Fig. 3 / Fig. 7 / Supp. Fig. 4 print no values; ``figures.json`` records them as "figure, values not in text".
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

PAPER_DIR = Path(__file__).resolve().parent / "paper"
TABLES = tuple(f"table{i}" for i in range(1, 11))
SETTING_KEYS = ("dataset", "teacher", "teacher_robustbench", "teacher_dataset", "student", "method", "attack", "eps",
                "data_fraction")
CELL_KEYS = ("table", "row", "column", "value", "std", "missing", "metric", "setting", "source")
METRICS = ("clean", "robust", "size_ratio")


class PaperDataError(ValueError):
    """A paper data file does not follow the cell schema."""


def validate_cell(cell: dict[str, Any], where: str = "") -> None:
    """Raise PaperDataError naming the first problem of one cell."""
    at = f"{where}{cell.get('table')}[{cell.get('row')!r}, {cell.get('column')!r}]"
    for key in CELL_KEYS:
        if key not in cell:
            raise PaperDataError(f"{at}: missing key {key!r}; a cell needs {CELL_KEYS}")
    if cell["metric"] not in METRICS:
        raise PaperDataError(f"{at}: metric {cell['metric']!r} not in {METRICS}")
    if cell["missing"]:
        if cell["value"] is not None:
            raise PaperDataError(f"{at}: a missing ('-') cell must have value null")
    elif not isinstance(cell["value"], (int, float)):
        raise PaperDataError(f"{at}: value must be a number (or missing: true with value null)")
    if cell["std"] is not None and not (isinstance(cell["std"], (int, float)) and cell["std"] >= 0):
        raise PaperDataError(f"{at}: std must be null or a number >= 0")
    missing_setting = [k for k in SETTING_KEYS if k not in cell["setting"]]
    if missing_setting:
        raise PaperDataError(f"{at}: setting lacks {missing_setting}")
    src = cell["source"]
    if not {"file", "line", "col_index"} <= set(src):
        raise PaperDataError(f"{at}: source needs file, line, col_index")


def validate_table(obj: dict[str, Any]) -> None:
    for key in ("table", "title", "file", "cells", "notes"):
        if key not in obj:
            raise PaperDataError(f"{obj.get('table', '?')}: missing key {key!r}")
    seen = set()
    for c in obj["cells"]:
        validate_cell(c)
        if c["table"] != obj["table"]:
            raise PaperDataError(f"{obj['table']}: cell claims table {c['table']!r}")
        key = (c["row"], c["column"])
        if key in seen:
            raise PaperDataError(f"{obj['table']}: duplicate cell {key}")
        seen.add(key)


@lru_cache(maxsize=None)
def _load(name: str) -> dict[str, Any]:
    path = PAPER_DIR / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} missing; valid tables: {', '.join(TABLES)}")
    obj = json.loads(path.read_text(encoding="utf-8"))
    validate_table(obj)
    return obj


def load_table(name: str) -> dict[str, Any]:
    """One table ('table1'..'table10'; '3' or 3 also accepted), validated. Returns a fresh copy."""
    name = f"table{name}" if str(name).isdigit() else str(name)
    if name not in TABLES:
        raise KeyError(f"unknown table {name!r}; valid: {', '.join(TABLES)}")
    return json.loads(json.dumps(_load(name)))


def load_all() -> dict[str, dict[str, Any]]:
    return {t: load_table(t) for t in TABLES}


def all_cells() -> list[dict[str, Any]]:
    return [c for t in TABLES for c in load_table(t)["cells"]]


def find_cell(table: str, row: str, column: str) -> dict[str, Any]:
    for c in load_table(table)["cells"]:
        if c["row"] == row and c["column"] == column:
            return c
    rows = sorted({c["row"] for c in load_table(table)["cells"]})
    raise KeyError(f"{table}: no cell ({row!r}, {column!r}); rows: {rows}")


def load_figures() -> list[dict[str, Any]]:
    return json.loads((PAPER_DIR / "figures.json").read_text(encoding="utf-8"))["figures"]


def cell_id(cell: dict[str, Any]) -> str:
    """Stable, pytest-friendly id: 'table3:CIFAR-10 / Ours:PGD 20'."""
    return f"{cell['table']}:{cell['row']}:{cell['column']}"
