"""The git commit of this checkout, for provenance (stdlib only: used by the trainer, evaluator and records).

Resolved from the package's own directory, never the caller's working directory, so a run launched from
elsewhere still names the code that produced it."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def git_commit(root: Path = ROOT) -> dict[str, str | bool | None]:
    """{"commit": sha or "unknown", "dirty": tracked files modified (None when git is unavailable)}; without git,
    $MIXACM_COMMIT (then also "source": "MIXACM_COMMIT"). Untracked
    files (a virtual environment or results inside the clone) do not make a checkout dirty. The one commit reader
    of the project: the trainer, evaluator, records and the theory report (which is torch-free, as this module)."""
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
        if sha:
            return {"commit": sha, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        pass
    return _from_environment()


def _from_environment() -> dict[str, str | bool | None]:
    """No git (a copy of the tree without .git, e.g. on a lent GPU machine): $MIXACM_COMMIT, named as the source;
    else "unknown"."""
    env = os.environ.get("MIXACM_COMMIT", "").strip()
    if env:
        return {"commit": env, "dirty": None, "source": "MIXACM_COMMIT"}
    return {"commit": "unknown", "dirty": None}


def commit_label(root: Path = ROOT) -> str:
    """"<sha>", "<sha>+dirty" or "unknown": the commit as provenance strings print it."""
    g = git_commit(root)
    return g["commit"] + ("+dirty" if g["dirty"] else "")
