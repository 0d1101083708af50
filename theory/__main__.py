"""``python -m theory [--out DIR] [--only MODULE] [--quick]``: run the theory checks, print the verdict table,
write DIR/theory.json and DIR/theory.html. Exit 0 even when a claim fails (a verdict is data); non-zero only on an
internal error of the runner itself."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from theory import report


def main(argv: list[str] | None = None, prog: str = "python -m theory") -> int:
    p = argparse.ArgumentParser(prog=prog, description=re.sub(r"`+([^`]*)`+", r"\1", __doc__ or ""),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="reports/out", help="output directory (default: reports/out)")
    p.add_argument("--only", action="append", default=None, metavar="MODULE",
                   help=f"run only this module (repeatable); one of {report.MODULES}")
    p.add_argument("--quick", action="store_true", help="smaller searches (for tests and smoke runs)")
    args = p.parse_args(argv)
    modules = report.MODULES
    if args.only:
        modules = []
        for m in args.only:
            full = m if m.startswith("theory.") else f"theory.{m}"
            if full not in report.MODULES:
                print(f"unknown module {m!r}; valid: {', '.join(report.MODULES)}", file=sys.stderr)
                return 2
            modules.append(full)
    from mixacm.paths import OutputPathError, writable_dir

    try:
        writable_dir(args.out, "--out")  # before computing: a bad path must not cost a whole run
    except OutputPathError as e:
        print(f"python -m theory: error: {e}", file=sys.stderr)
        return 2
    try:
        result = report.run_all(modules, quick=args.quick)
        print(report.table(result))
        pj, ph = report.write(result, Path(args.out))
    except Exception as exc:  # noqa: BLE001 - runner's own failure: non-zero exit
        print(f"theory runner internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {pj} and {ph}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
