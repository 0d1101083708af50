"""THE results schema: what every experiment writes and what the report and the claims read.

Reproduced-results file (JSON)::

    {
      "provenance": {"commit": str, "machine": str, "python": str, "torch": str, "started": str (ISO 8601),
                     "wall_time_s": float, "tier": "smoke" | "cpu" | "gpu",
                     optional (runner.run_plan): "plan", "seeds", "scale", "train_wall_time_s" and
                     "eval_wall_time_s" ({"<run>-s<seed>[-aa]": s}), "plan_compute_s" (their sum: a resumed plan's
                     cost over all its sessions)},
      "results": [record, ...]
    }

A record reproduces one paper cell (same ``table``/``row``/``column`` as in ``verification/paper/``) or a
quantity the paper shows only in a figure (``table`` = "fig3", "fig4", "fig7", or "bench")::

    {
      "table": "table3", "row": "CIFAR-10 / Ours", "column": "PGD 20",
      "setting": {dataset, teacher, teacher_robustbench, teacher_dataset, student, method, attack, eps,
                  data_fraction, ...extra keys, e.g. components, blocks, transform, feature_loss, scale},
      "value": float,            # mean over runs, in percent for accuracies
      "std": float | null,       # sample std (ddof=1) over runs; null when n_runs == 1
      "n_runs": int, "runs": [float, ...], "seeds": [int, ...],   # per-seed values, same order
      "config": {...},           # the trainer + evaluator config actually run
      "wall_time_s": float,
      optional "per_image": {"n": int, "indices_sha256": str, "masks": [str, ...]}
                                 # accuracies: each seed's per-image 0/1 result (mixacm.masks.pack), same order as
                                 # runs, on the test images fingerprinted by indices_sha256 (mixacm.masks); two
                                 # records with the same fingerprint were measured on the same images (paired)
    }

Claims file (JSON): a list of ``{"id", "statement", "source", "verdict", "numbers", "paper_numbers", "rule"}`` with
verdict in ``CLAIM_VERDICTS`` (see ``verification/claims.py`` for how verdicts are decided); ``numbers`` and
``paper_numbers`` are lists of conditions, each with ``CONDITION_KEYS`` (the test, its level ``alpha``, ``df``, ``t``,
the one-sided p-values ``p_greater``/``p_less``, the 95 % interval ``ci95`` of ``delta``; null where not applicable)
and a status in ``CONDITION_STATUSES``.

``validate_results(obj)`` / ``validate_record(rec)`` / ``validate_claims(obj)`` raise ``SchemaError`` with a
one-line message naming the offending record and the fix. ``make_record(...)`` builds a record from per-seed values.
"""
from __future__ import annotations

import math
import statistics
from typing import Any, Iterable

PROVENANCE_KEYS = ("commit", "machine", "python", "torch", "started", "wall_time_s", "tier")
TIERS = ("smoke", "cpu", "gpu")
RECORD_KEYS = ("table", "row", "column", "setting", "value", "std", "n_runs", "runs", "seeds", "config", "wall_time_s")
SETTING_KEYS = ("dataset", "teacher", "teacher_robustbench", "teacher_dataset", "student", "method", "attack", "eps",
                "data_fraction")
CLAIM_KEYS = ("id", "statement", "source", "verdict", "numbers", "paper_numbers", "rule")
CLAIM_VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not testable here", "not run here")
CONDITION_KEYS = ("condition", "status", "reason", "delta", "threshold", "test", "alpha", "df", "t", "p_greater", "p_less",
                  "ci95")
CONDITION_STATUSES = ("holds", "fails", "unclear")
PER_IMAGE_KEYS = ("n", "indices_sha256", "masks")


class SchemaError(ValueError):
    """A results/claims object does not follow the schema."""


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def validate_record(rec: Any, where: str = "record") -> None:
    if not isinstance(rec, dict):
        raise SchemaError(f"{where}: must be a dict, got {type(rec).__name__}")
    missing = [k for k in RECORD_KEYS if k not in rec]
    if missing:
        raise SchemaError(f"{where}: missing keys {missing}; a record needs {RECORD_KEYS}")
    where = f"{where} ({rec['table']}/{rec['row']}/{rec['column']})"
    for k in ("table", "row", "column"):
        if not isinstance(rec[k], str) or not rec[k]:
            raise SchemaError(f"{where}: {k!r} must be a non-empty string (the paper cell's coordinates)")
    if not isinstance(rec["setting"], dict):
        raise SchemaError(f"{where}: setting must be a dict")
    lacking = [k for k in SETTING_KEYS if k not in rec["setting"]]
    if lacking:
        raise SchemaError(f"{where}: setting lacks {lacking} (use null when not applicable)")
    runs, seeds, n = rec["runs"], rec["seeds"], rec["n_runs"]
    if not isinstance(n, int) or n < 1:
        raise SchemaError(f"{where}: n_runs must be an int >= 1")
    if not isinstance(runs, list) or len(runs) != n or not all(_num(v) for v in runs):
        raise SchemaError(f"{where}: runs must list n_runs={n} finite numbers, got {runs!r}")
    if not isinstance(seeds, list) or len(seeds) != n:
        raise SchemaError(f"{where}: seeds must list n_runs={n} seeds, got {seeds!r}")
    if not _num(rec["value"]):
        raise SchemaError(f"{where}: value must be a finite number (the mean of runs)")
    mean = statistics.fmean(runs)
    if abs(mean - rec["value"]) > 1e-6 * max(1.0, abs(mean)):
        raise SchemaError(f"{where}: value {rec['value']} is not the mean of runs ({mean}); recompute with make_record")
    if n == 1:
        if rec["std"] is not None:
            raise SchemaError(f"{where}: std must be null for a single run")
    else:
        if not _num(rec["std"]) or rec["std"] < 0:
            raise SchemaError(f"{where}: std must be a number >= 0 for n_runs={n}")
        sd = statistics.stdev(runs)
        if abs(sd - rec["std"]) > 1e-6 * max(1.0, sd):
            raise SchemaError(f"{where}: std {rec['std']} is not the sample std of runs ({sd}); use make_record")
    if not isinstance(rec["config"], dict):
        raise SchemaError(f"{where}: config must be a dict")
    if rec.get("per_image") is not None:
        _validate_per_image(rec["per_image"], runs, where)
    if not (_num(rec["wall_time_s"]) and rec["wall_time_s"] >= 0):
        raise SchemaError(f"{where}: wall_time_s must be a number >= 0")


def _validate_per_image(block: Any, runs: list[float], where: str) -> None:
    from mixacm.masks import unpack

    if not isinstance(block, dict) or set(block) != set(PER_IMAGE_KEYS):
        raise SchemaError(f"{where}: per_image must be a dict with keys {PER_IMAGE_KEYS}")
    n, masks = block["n"], block["masks"]
    if not isinstance(n, int) or n < 1 or not isinstance(masks, list) or len(masks) != len(runs):
        raise SchemaError(f"{where}: per_image needs n >= 1 and one mask per run ({len(runs)})")
    for i, (m, v) in enumerate(zip(masks, runs)):
        try:
            acc = 100.0 * float(unpack(m, n).mean())
        except (ValueError, TypeError) as e:
            raise SchemaError(f"{where}: per_image.masks[{i}] is not a packed mask of {n} images ({e})") from None
        if abs(acc - v) > 1e-6 * max(1.0, abs(v)):
            raise SchemaError(f"{where}: per_image.masks[{i}] gives {acc:.4f} % but runs[{i}] is {v}; the masks "
                              "must be the runs' own evaluations")


def validate_results(obj: Any) -> None:
    """Validate a whole results file; raises SchemaError on the first problem."""
    if not isinstance(obj, dict) or set(obj) < {"provenance", "results"}:
        raise SchemaError("results file must be {'provenance': {...}, 'results': [...]}")
    prov = obj["provenance"]
    if not isinstance(prov, dict):
        raise SchemaError("provenance must be a dict")
    missing = [k for k in PROVENANCE_KEYS if k not in prov]
    if missing:
        raise SchemaError(f"provenance lacks {missing}; needs {PROVENANCE_KEYS}")
    if prov["tier"] not in TIERS:
        raise SchemaError(f"provenance.tier {prov['tier']!r} not in {TIERS}")
    if not isinstance(obj["results"], list):
        raise SchemaError("results must be a list of records")
    seen = set()
    for i, rec in enumerate(obj["results"]):
        validate_record(rec, f"results[{i}]")
        key = (*cell_key(rec), _frozen(rec["setting"]))
        if key in seen:
            raise SchemaError(f"results[{i}]: duplicate record for {key[:3]} with the same setting; merge the runs")
        seen.add(key)


def validate_claims(obj: Any) -> None:
    if not isinstance(obj, list):
        raise SchemaError("claims file must be a list of claims")
    for i, c in enumerate(obj):
        if not isinstance(c, dict):
            raise SchemaError(f"claims[{i}]: must be a dict")
        missing = [k for k in CLAIM_KEYS if k not in c]
        if missing:
            raise SchemaError(f"claims[{i}] ({c.get('id')}): missing keys {missing}")
        if c["verdict"] not in CLAIM_VERDICTS:
            raise SchemaError(f"claims[{i}] ({c['id']}): verdict {c['verdict']!r} not in {CLAIM_VERDICTS}")
        for side in ("numbers", "paper_numbers"):
            for j, n in enumerate(c[side] or []):
                where = f"claims[{i}] ({c['id']}).{side}[{j}]"
                if not isinstance(n, dict):
                    raise SchemaError(f"{where}: must be a dict")
                missing = [k for k in CONDITION_KEYS if k not in n]
                if missing:
                    raise SchemaError(f"{where}: missing keys {missing}; recompute with verification.claims")
                if n["status"] not in CONDITION_STATUSES:
                    raise SchemaError(f"{where}: status {n['status']!r} not in {CONDITION_STATUSES}")


def _frozen(d: Any) -> Any:
    if isinstance(d, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in d.items()))
    if isinstance(d, list):
        return tuple(_frozen(v) for v in d)
    return d


def cell_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    """A paper cell's key (table, row, column), of a record, a spec or a cell of ``verification.paper_data``: the
    one definition every lookup by cell uses."""
    return obj["table"], obj["row"], obj["column"]


def make_record(table: str, row: str, column: str, setting: dict[str, Any], runs: Iterable[float],
                seeds: Iterable[int], config: dict[str, Any] | None = None, wall_time_s: float = 0.0,
                per_image: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build a valid record from per-seed values (mean and sample std computed here); ``per_image``: the runs'
    packed per-image masks (see the module's docstring), checked against the values."""
    runs, seeds = [float(v) for v in runs], list(seeds)
    full_setting = {k: None for k in SETTING_KEYS}
    full_setting.update(setting)
    rec = {"table": table, "row": row, "column": column, "setting": full_setting,
           "value": statistics.fmean(runs) if runs else float("nan"),
           "std": statistics.stdev(runs) if len(runs) > 1 else None,
           "n_runs": len(runs), "runs": runs, "seeds": seeds, "config": dict(config or {}),
           "wall_time_s": float(wall_time_s)}
    if per_image is not None:
        rec["per_image"] = per_image
    validate_record(rec)
    return rec


def provenance(tier: str, started: str, wall_time_s: float) -> dict[str, Any]:
    """Provenance of this process: git commit (or 'unknown'), machine, python and torch versions."""
    from mixacm.gitinfo import git_commit
    from mixacm.machine import describe, summary_line

    git = git_commit()
    machine = describe()
    return {"commit": git["commit"] + ("+dirty" if git["dirty"] else ""), "machine": summary_line(machine),
            "python": machine["python"], "torch": machine["torch"],
            "started": started, "wall_time_s": float(wall_time_s), "tier": tier}
