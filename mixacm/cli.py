"""The library's own command line, ``python -m mixacm.cli train|evaluate`` (what torchrun launches on each rank):
one sub-command per job, each delegating to its module's ``main(argv)``. The ``mixacm`` console script adds the
suite's jobs (demo, report, theory) on top of these, in ``mixacm_suite.cli``; this module imports nothing above the
library."""
from __future__ import annotations

import importlib
import sys

# sub-command -> (module, one-line help). Explicit table, no import-time registration.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("mixacm.train", "train a model from a config: mixacm train CONFIG [--set key=value ...]"),
    "evaluate": ("mixacm.evaluate", "attack a checkpoint: clean, FGSM, PGD-k, CW, AutoAttack, worst case"),
}


def usage(commands: dict[str, tuple[str, str]], prog: str = "mixacm") -> str:
    lines = [f"usage: {prog} [--version] COMMAND [args...]   ({prog} help COMMAND: its options)", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in commands.items()]
    return "\n".join(lines)


def dispatch(commands: dict[str, tuple[str, str]], argv: list[str] | None = None, prog: str = "mixacm") -> int:
    """Run ``argv``'s sub-command from ``commands``; ``help [CMD]``, ``--help`` and ``--version`` answered here."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(usage(commands, prog))
        return 0
    if argv[0] in {"-V", "--version"}:
        from mixacm import __version__
        from mixacm.gitinfo import git_commit
        print(f"mixacm {__version__} (commit {git_commit()['commit']})")
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "help":  # `mixacm help` = `mixacm --help`; `mixacm help CMD` = `mixacm CMD --help`
        if not rest:
            print(usage(commands, prog))
            return 0
        cmd, rest = rest[0], ["--help"]
    if cmd not in commands:
        print(f"{prog}: unknown command {cmd!r}; valid: {', '.join(commands)}, help", file=sys.stderr)
        return 2
    if cmd == "train" and ({"-h", "--help"} & set(rest)):  # answer without importing torch
        from mixacm.cli_parsers import train_parser
        train_parser().parse_args(rest)
    module = importlib.import_module(commands[cmd][0])
    if cmd == "theory":
        return int(module.main(rest, prog=f"{prog} theory") or 0)
    return int(module.main(rest) or 0)


def main(argv: list[str] | None = None) -> int:
    return dispatch(COMMANDS, argv, prog="python -m mixacm.cli")


if __name__ == "__main__":
    sys.exit(main())
