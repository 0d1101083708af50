"""`mixacm demo`: the main job on a fresh machine, with no download.

1. the theory checks of Theorems 4.1/4.2 (``python -m theory --quick``; ``--full``: every check at full size)
   -> OUT/theory.json + theory.html;
2. the smoke-tier pipeline on the embedded default (scikit-learn's digits): a Fast-AT teacher, MixACM students with
   the components of Table 6, natural training, RKD and PGD-7 AT, 2 seeds, evaluated clean + FGSM + PGD-20
   -> OUT/digits/results.json + claims.json (``--full``: every ablation and baseline of the digits plan);
3. the HTML report putting the paper's tables beside these numbers -> OUT/report.html.

Runs are resumable: a second call reuses finished runs in OUT/digits/runs (delete OUT for a fresh start).
"""
from __future__ import annotations

import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from mixacm.cli_parsers import parser

    p = parser("mixacm demo", __doc__.split("\n\n")[0] + "\n\nAbout 45 seconds on 2 quiet cores; --full "
               "(every check and ablation) about 3 minutes; --quick (2 student epochs) about half a minute.")
    p.add_argument("--out", default="reports/out", help="output directory")
    p.add_argument("--epochs", type=int, default=4, help="student epochs on digits")
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds (claims need at least 2)")
    p.add_argument("--skip-theory", action="store_true", help="reuse OUT/theory.json instead of re-running")
    p.add_argument("--full", action="store_true", help="every theory check at full size and every ablation and "
                                                        "baseline of the digits plan")
    p.add_argument("--quick", action="store_true", help="2 student epochs")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    if not args.skip_theory:
        from theory.__main__ import main as theory_main
        print("== 1/3 theory checks (Theorems 4.1, 4.2, Beta-mixture identity)", flush=True)
        theory_main(["--out", str(out)] + ([] if args.full else ["--quick"]))

    from verification.runner import run_plan
    from verification.plans import digits_plan
    seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    epochs = 2 if args.quick else args.epochs
    print(f"== 2/3 smoke pipeline on digits: seeds {seeds}, {epochs} epochs", flush=True)
    run_plan(digits_plan(epochs=epochs, seeds=seeds, extra=args.full), out / "digits")

    from reports.build import main as report_main
    print("== 3/3 report", flush=True)
    report_main(["--results", str(out / "digits"), "--theory", str(out / "theory.json"),
                 "--out", str(out / "report.html")])
    print(f"done in {time.time() - t0:.0f} s. Open {(out / 'report.html').resolve()}")
    return 0
