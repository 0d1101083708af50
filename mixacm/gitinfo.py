"""The git commit of this checkout, for provenance (stdlib only: used by the trainer, evaluator and records).

Resolved from the package's own directory, never the caller's working directory, so a run launched from
elsewhere still names the code that produced it."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def git_commit() -> dict[str, str | bool | None]:
    """{"commit": sha or "unknown", "dirty": tracked files modified (None when git is unavailable)}."""
    try:
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
        return {"commit": sha or "unknown", "dirty": dirty if sha else None}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}
