"""`mixacm` console script: one sub-command per job, each delegating to its module's ``main(argv)``."""
from __future__ import annotations

import importlib
import sys

# sub-command -> (module, one-line help). Explicit table, no import-time registration.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("mixacm.demo", "theory checks + smoke pipeline on the embedded default, then the HTML report"),
    "train": ("mixacm.train", "train a model from a config: mixacm train CONFIG [--set key=value ...]"),
    "evaluate": ("mixacm.evaluate", "attack a checkpoint: clean, FGSM, PGD-k, CW, AutoAttack, worst case"),
    "report": ("reports.build", "render results JSON + paper data + theory JSON into one HTML file"),
    "theory": ("theory.__main__", "run the exact checks of Theorems 4.1/4.2 (same as python -m theory)"),
}


def _usage() -> str:
    lines = ["usage: mixacm [--version] COMMAND [args...]", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    if argv[0] in {"-V", "--version"}:
        from mixacm import __version__
        from mixacm.gitinfo import git_commit
        print(f"mixacm {__version__} (commit {git_commit()['commit']})")
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"mixacm: unknown command {cmd!r}; valid: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[cmd][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
