"""The tiers' orchestration, usable with or without pytest: which paper cells a tier runs, the plan they become, and
one call that runs it. ``verification/conftest.py`` and ``verification/test_cpu_tier.py`` only wrap these.

    python -m verification.tiers gpu --out DIR [--tables table3,table6] [--rehearse]   # the gpu tier's cells
    python -m verification.tiers cpu --out DIR [--data-dir CIFAR10_JPEG]                # the cpu tier's plan

The gpu tier runs every runnable paper cell of the selected tables at the paper's settings (CUDA), or at toy amounts
with stand-in teachers and data (``--rehearse``, any device); the cpu tier runs ``plans.cpu_plan`` with the
arguments of the recorded set ``reports/recorded/cpu`` (its ``plan.json``). Both are resumable under ``--out``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

RECORDED_CPU = Path(__file__).resolve().parents[1] / "reports" / "recorded" / "cpu"


def runnable_specs() -> list[dict]:
    """Every paper cell the gpu tier can run (specs not blocked)."""
    from verification import specs
    return [s for s in specs.all_specs() if not s["blocked"]]


def gpu_tier_description() -> str:
    """'<N> paper cells (table1: n, ...)' for messages."""
    from verification import specs

    summary = specs.runnable_summary()
    per = ", ".join(f"{t}: {n}" for t, n in sorted(summary.items(), key=lambda kv: int(kv[0][5:])))
    return f"{sum(summary.values())} paper cells ({per})"


def rehearsal_root(out: str | Path) -> Path:
    """Where a rehearsal keeps its stand-in teachers and data: beside the results."""
    return Path(out) / "_rehearsal"


def prepare_rehearsal_env(out: str | Path) -> None:
    """Before the specs are built: the stand-in teachers' environment variables decide which cells are runnable."""
    from verification import rehearsal
    rehearsal.apply(rehearsal.env_for(rehearsal_root(out).resolve()))


def run_gpu_tier(selected: list[dict], out: str | Path, *, rehearse: bool) -> tuple[dict[str, Any], str]:
    """Run the selected cells' plan (resumable under ``out``) -> (results, one-line summary)."""
    from verification import plans, rehearsal
    from verification.runner import run_plan

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if rehearse:
        root = rehearsal_root(out).resolve()
        names = sorted({s["train"]["teacher"].split(":", 1)[1] for s in selected if s["kind"] == "train_eval"
                        and (s["train"].get("teacher") or "").startswith("robustbench:")})
        imagenet = any(s["kind"] == "train_eval" and s["train"]["dataset"] == "imagenet" for s in selected)
        rehearsal.apply(rehearsal.prepare(root, names, imagenet=imagenet))
        plan = plans.gpu_plan(selected, rehearsal=rehearsal.amounts(), teacher_cache=rehearsal.teacher_cache(root))
    else:
        plan = plans.gpu_plan(selected, teacher_cache=os.environ.get("MIXACM_TEACHER_CACHE") or out / "_teachers")
    results = run_plan(plan, out)
    n_runs = sum(len(r.seeds or plan.seeds) for r in plan.runs)
    summary = (f"gpu tier{' REHEARSAL' if rehearse else ''}: {len(selected)} cells exercised of "
               f"{len(runnable_specs())} runnable ({len(plan.runs)} training runs, {n_runs} with seeds), "
               f"{time.time() - t0:.0f} s; results in {out / 'results.json'}")
    return results, summary


def cpu_tier_plan(data_root: str | Path):
    """``plans.cpu_plan`` with the recorded cpu set's arguments (so a rerun is comparable with it)."""
    from verification.plans import cpu_plan
    from verification.study import plan_kwargs

    f = RECORDED_CPU / "plan.json"
    return cpu_plan(data_root, **plan_kwargs("cpu", "{}", f if f.is_file() else None))


def run_cpu_tier(data_root: str | Path, out: str | Path) -> dict[str, Any]:
    from verification.runner import run_plan
    return run_plan(cpu_tier_plan(data_root), Path(out))


def _tables(arg: str | None) -> set[str] | None:
    return None if not arg else {t.strip() for t in arg.split(",") if t.strip()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m verification.tiers", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="tier", required=True)
    g = sub.add_parser("gpu", help="the gpu tier's paper cells")
    g.add_argument("--out", required=True, help="results directory (resumable)")
    g.add_argument("--tables", default=None, help="comma-separated tables, e.g. table3,table6 (default: all)")
    g.add_argument("--rehearse", action="store_true", help="toy amounts with stand-in teachers and data, any device")
    c = sub.add_parser("cpu", help="the cpu tier's plan on the CIFAR-10 JPEG copy")
    c.add_argument("--out", required=True, help="results directory (resumable)")
    c.add_argument("--data-dir", default=None, help="CIFAR-10 JPEG copy (default: $MIXACM_CIFAR10_JPEG or "
                                                    "../shared/data/cifar10-jpeg)")
    a = p.parse_args(argv)
    if a.tier == "cpu":
        from verification.plans import cifar_jpeg_root
        root = cifar_jpeg_root(a.data_dir)
        if root is None:
            p.error("CIFAR-10 JPEG copy not found; pass --data-dir or set MIXACM_CIFAR10_JPEG")
        run_cpu_tier(root, a.out)
        print(f"results -> {Path(a.out) / 'results.json'}")
        return 0
    if a.rehearse:
        prepare_rehearsal_env(a.out)
    else:
        import torch
        if not torch.cuda.is_available():
            p.error(f"CUDA is not available; on a CUDA machine this runs {gpu_tier_description()} "
                    f"(--rehearse runs them at toy amounts here)")
    tables = _tables(a.tables)
    selected = [s for s in runnable_specs() if tables is None or s["table"] in tables]
    if tables and not selected:
        p.error(f"no runnable cell in {sorted(tables)}")
    _, summary = run_gpu_tier(selected, a.out, rehearse=a.rehearse)
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
