"""`mixacm demo`: the main job on a fresh machine, with no download.

1. the theory checks of Theorems 4.1/4.2 (``python -m theory``) -> OUT/theory.json + theory.html;
2. the smoke-tier pipeline on the embedded default (scikit-learn's digits): a Fast-AT teacher, MixACM students
   and every ablation/baseline, 2 seeds, evaluated clean + PGD-20 -> OUT/digits/results.json + claims.json;
3. the HTML report putting the paper's tables beside these numbers -> OUT/report.html.

Runs are resumable: a second call reuses finished runs in OUT/digits/runs (delete OUT for a fresh start).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mixacm demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="reports/out", help="output directory (default: reports/out)")
    p.add_argument("--epochs", type=int, default=4, help="student epochs on digits (default 4)")
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1; claims need >= 2)")
    p.add_argument("--skip-theory", action="store_true", help="reuse OUT/theory.json instead of re-running")
    p.add_argument("--quick", action="store_true", help="theory --quick, 2 student epochs, no extra ablations")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    if not args.skip_theory:
        from theory.__main__ import main as theory_main
        print("== 1/3 theory checks (Theorems 4.1, 4.2, Beta-mixture identity)", flush=True)
        theory_main(["--out", str(out)] + (["--quick"] if args.quick else []))

    from verification.experiments import run_plan
    from verification.plans import digits_plan
    seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    epochs = 2 if args.quick else args.epochs
    print(f"== 2/3 smoke pipeline on digits: seeds {seeds}, {epochs} epochs", flush=True)
    run_plan(digits_plan(epochs=epochs, seeds=seeds, extra=not args.quick), out / "digits")

    from reports.build import main as report_main
    print("== 3/3 report", flush=True)
    report_main(["--results", str(out / "digits"), "--theory", str(out / "theory.json"),
                 "--out", str(out / "report.html")])
    print(f"done in {time.time() - t0:.0f} s. Open {(out / 'report.html').resolve()}")
    return 0
