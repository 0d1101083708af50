"""`mixacm` console script: the library's jobs (train, evaluate) and the suite's (demo, report, theory), one
sub-command each, delegating to its module's ``main(argv)``."""
from __future__ import annotations

import sys

from mixacm.cli import COMMANDS as LIBRARY_COMMANDS
from mixacm.cli import dispatch

# sub-command -> (module, one-line help). Explicit table, no import-time registration.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("mixacm_suite.demo", "theory checks + smoke pipeline on the embedded default, then the HTML report"),
    **LIBRARY_COMMANDS,
    "report": ("reports.build", "render results JSON + paper data + theory JSON into one HTML file"),
    "theory": ("theory.__main__", "run the exact checks of Theorems 4.1/4.2 (same as python -m theory)"),
}


def main(argv: list[str] | None = None) -> int:
    return dispatch(COMMANDS, argv, prog="mixacm")


if __name__ == "__main__":
    sys.exit(main())
