"""Copy a finished plan's outputs into ``reports/recorded/<name>/`` so a reader can open them without running
anything: results + claims JSON, ACM profiles, per-run provenance (config, seed, commit, machine, wall time,
metrics), evaluation summaries (without per-sample masks), and the rendered HTML report.

    python -m verification.record --from reports/out/cpu --to reports/recorded/cpu --plan-json '{"seeds": [0, 1]}'
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

RUN_FILES = ("summary.json", "config.json", "meta.json", "metrics.jsonl")


def _strip_masks(obj):
    """Per-sample masks and index lists make evaluation files large; the record keeps the aggregates."""
    if isinstance(obj, dict):
        return {k: _strip_masks(v) for k, v in obj.items() if not k.endswith("_mask") and k != "indices"}
    if isinstance(obj, list):
        return [_strip_masks(v) for v in obj]
    return obj


def _copy_portable(path: Path, to: Path, base: Path, trained_in: Path | None = None) -> None:
    """A run file with every path of this machine named relative to the results dir or through ${MIXACM_*} (run dirs
    keep absolute paths because resuming needs them; a record is read elsewhere). ``trained_in``: the results dir
    the run was trained in, when it has since been moved or copied into ``base``."""
    from mixacm.paths import portable

    from .experiments import _relocated

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


def record(src: Path, dest: Path, plan_kwargs: dict | None = None, theory: Path | None = None) -> Path:
    if not (src / "results.json").is_file():
        raise FileNotFoundError(f"{src}/results.json missing: run the plan first")
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("results.json", "claims.json", "acm_profiles.json", "acm_profiles.svg"):
        if (src / name).is_file():
            shutil.copy2(src / name, dest / name)
    for run_dir in sorted((src / "runs").glob("*/seed*")):
        if not (run_dir / "summary.json").is_file():  # stopped mid-training: not a result
            print(f"left out unfinished run {run_dir.parent.name}/{run_dir.name}")
            continue
        out = dest / "runs" / run_dir.parent.name / run_dir.name
        out.mkdir(parents=True, exist_ok=True)
        # a run copied in from another results dir names that dir: name this one instead
        trained_in = json.loads((run_dir / "summary.json").read_text()).get("run_dir")
        for f in RUN_FILES:
            if (run_dir / f).is_file():
                _copy_portable(run_dir / f, out / f, src, Path(trained_in).parents[2] if trained_in else None)
    for ev in sorted((src / "evals").glob("*.json")):
        (dest / "evals").mkdir(exist_ok=True)
        (dest / "evals" / ev.name).write_text(json.dumps(_strip_masks(json.loads(ev.read_text())), indent=1))
    if plan_kwargs is not None:
        (dest / "plan.json").write_text(json.dumps(plan_kwargs, indent=1))
    from reports.build import main as report_main
    args = ["--results", str(dest), "--out", str(dest / "report.html")]
    if theory is not None and theory.is_file():
        shutil.copy2(theory, dest / "theory.json")
        args += ["--theory", str(dest / "theory.json")]
    report_main(args)
    return dest


def _side(cond: dict) -> str:
    def one(q):
        if not q:
            return "?"
        sd = f" ± {q['std']:.2f}" if q.get("std") is not None else ""
        return f"{q['mean']:.2f}{sd}"
    if cond.get("a") is None:
        return cond.get("condition", "")
    return one(cond.get("a")) + (f" vs {one(cond.get('b'))}" if cond.get("b") else "")


def claims_markdown(claims: list[dict]) -> str:
    """The claims table for the README: verdict, our numbers and the paper's, condition by condition."""
    lines = ["| claim | verdict (ours) | our numbers (mean ± std over seeds) | paper's numbers | paper's own verdict |",
             "|---|---|---|---|---|"]
    for c in claims:
        ours = "; ".join(f"{n['condition']}: {_side(n)} ({n['status']})" for n in c.get("numbers") or []) \
            or (c.get("reason") or "")
        paper = "; ".join(_side(n) for n in c.get("paper_numbers") or []) or (c.get("paper_reason") or "")
        lines.append(f"| {c['statement']} ({c['source']}) | **{c['verdict']}** | {ours} | {paper} | "
                     f"{c.get('paper_verdict', '')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m verification.record", description=__doc__.split("\n\n")[0])
    p.add_argument("--from", dest="src", required=True)
    p.add_argument("--to", dest="dest", required=True)
    p.add_argument("--plan-json", default=None, help="the cpu_plan keyword arguments used (JSON)")
    p.add_argument("--theory", default=None, help="theory.json to include in the report")
    p.add_argument("--markdown", action="store_true", help="also print the claims table as markdown")
    a = p.parse_args(argv)
    record(Path(a.src), Path(a.dest), json.loads(a.plan_json) if a.plan_json else None,
           Path(a.theory) if a.theory else None)
    print(f"recorded into {a.dest}")
    if a.markdown:
        print(claims_markdown(json.loads((Path(a.dest) / "claims.json").read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
