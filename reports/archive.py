"""Copy a finished plan's outputs into ``reports/recorded/<name>/`` so a reader can open them without running
anything: results + claims JSON, ACM profiles, per-run provenance (config, seed, commit, machine, wall time,
metrics), evaluations with their per-image masks bit-packed (``compact_masks``), and the rendered HTML report.
A *record* is one row of ``results.json`` (``verification.schema.make_record``); what this module writes is a
*recorded set*, the archive of a whole plan.

    python -m reports.archive --from reports/out/cpu --to reports/recorded/cpu --plan-json '{"seeds": [0, 1]}'
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from verification.results_dir import EVALS, RUNS

RUN_FILES = ("summary.json", "config.json", "meta.json", "metrics.jsonl")


def compact_masks(obj):
    """Evaluation files keep their per-image results, bit-packed: each ``<name>_mask`` list of 0/1 becomes
    ``<name>_mask_packed`` (``mixacm.masks.pack``; its length is the evaluation's ``n_eval``), and the list of test
    indices becomes its fingerprint ``indices_sha256`` (the subset is reproducible from the evaluation's seed)."""
    from mixacm.masks import indices_sha256, pack

    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k.endswith("_mask") and isinstance(v, list):
                out[k + "_packed"] = pack(v)
            elif k == "indices" and isinstance(v, list):
                out.setdefault("indices_sha256", obj.get("indices_sha256") or indices_sha256(v))
            else:
                out[k] = compact_masks(v)
        return out
    if isinstance(obj, list):
        return [compact_masks(v) for v in obj]
    return obj


def _copy_portable(path: Path, to: Path, base: Path, trained_in: Path | None = None) -> None:
    """A run file with every path of this machine named relative to the results dir or through ${MIXACM_*} (run dirs
    keep absolute paths because resuming needs them; a record is read elsewhere). ``trained_in``: the results dir
    the run was trained in, when it has since been moved or copied into ``base``."""
    from mixacm.paths import portable

    from verification.runner import _relocated

    def clean(obj):
        if trained_in is not None:
            obj = _relocated(obj, str(trained_in), str(base))
        return portable(obj, base)
    if path.suffix == ".json":
        to.write_text(json.dumps(clean(json.loads(path.read_text())), indent=1))
    elif path.suffix == ".jsonl":
        lines = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
        to.write_text("".join(json.dumps(clean(x)) + "\n" for x in lines))
    else:
        shutil.copy2(path, to)


def archive(src: Path, dest: Path, plan_kwargs: dict | None = None, theory: Path | None = None) -> Path:
    if not (src / "results.json").is_file():
        raise FileNotFoundError(f"{src}/results.json missing: run the plan first")
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("results.json", "claims.json", "scaling.json", "acm_profiles.json", "acm_profiles.svg"):
        if (src / name).is_file():
            shutil.copy2(src / name, dest / name)
    for run_dir in sorted((src / RUNS).glob("*/seed*")):
        if not (run_dir / "summary.json").is_file():  # stopped mid-training: not a result
            print(f"left out unfinished run {run_dir.parent.name}/{run_dir.name}")
            continue
        out = dest / RUNS / run_dir.parent.name / run_dir.name
        out.mkdir(parents=True, exist_ok=True)
        # a run copied in from another results dir names that dir: name this one instead
        trained_in = json.loads((run_dir / "summary.json").read_text()).get("run_dir")
        for f in RUN_FILES:
            if (run_dir / f).is_file():
                _copy_portable(run_dir / f, out / f, src, Path(trained_in).parents[2] if trained_in else None)
    for ev in sorted((src / EVALS).glob("*.json")):
        (dest / EVALS).mkdir(exist_ok=True)
        (dest / EVALS / ev.name).write_text(json.dumps(compact_masks(json.loads(ev.read_text())), indent=1))
    if plan_kwargs is not None:
        (dest / "plan.json").write_text(json.dumps(plan_kwargs, indent=1))
    from .build import main as report_main
    shown = Path(os.path.relpath(dest))  # the report names its results file relative to where it was recorded
    args = ["--results", str(shown), "--out", str(dest / "report.html")]
    if theory is not None and theory.is_file():
        shutil.copy2(theory, dest / "theory.json")
        args += ["--theory", str(shown / "theory.json")]
    report_main(args)
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports.archive", description=__doc__.split("\n\n")[0])
    p.add_argument("--from", dest="src", required=True)
    p.add_argument("--to", dest="dest", required=True)
    p.add_argument("--plan-json", default=None, help="the cpu_plan keyword arguments used (JSON)")
    p.add_argument("--theory", default=None, help="theory.json to include in the report")
    a = p.parse_args(argv)
    archive(Path(a.src), Path(a.dest), json.loads(a.plan_json) if a.plan_json else None,
           Path(a.theory) if a.theory else None)
    print(f"recorded into {a.dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
