"""Argument parsers of the light sub-commands and the help formatter every sub-command shares; imports nothing
heavy, so ``mixacm train --help`` answers without loading torch."""
from __future__ import annotations

import argparse
import re


def clean(text: str | None) -> str:
    """Docstring prose for a terminal: RST/Markdown backticks and ``**`` removed."""
    return re.sub(r"`+([^`]*)`+(_?)", r"\1", text or "").replace("**", "")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks; appends "(default: X)" only where it says something: not for None or
    False, not for a required option, and not where the help already states its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text.lower() or action.default in (None, False, argparse.SUPPRESS) or action.required
                or action.option_strings == [] or action.default == []):
            return text
        return f"{text} (default: {action.default})"


def parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, description=clean(description), formatter_class=HelpFormatter)


def train_parser() -> argparse.ArgumentParser:
    p = parser("mixacm train", "Train a model from a config file (TOML or JSON; keys: mixacm/config.py).")
    p.add_argument("config", help="TOML/JSON config, e.g. configs/digits/mixacm.toml")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (repeatable), e.g. --set lr=0.05 --set eps=8/255")
    p.add_argument("--run-dir", default=None, help="output directory (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --run-dir from its last.pt (with the recorded config)")
    p.add_argument("--extend", action="store_true",
                   help="with --resume: train a finished run on to a larger epochs (--set epochs=N)")
    return p
