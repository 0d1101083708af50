"""Output paths checked before long work starts (no torch here: the theory runner uses it too)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


class OutputPathError(ValueError):
    """An output path that cannot be written; the message is one line that names the fix."""


def writable_dir(path: str | Path, what: str) -> Path:
    """Create ``path`` if needed and prove it writable with a probe file; OutputPathError otherwise."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputPathError(f"{what} {str(p)!r} is a file, not a directory; give a directory path")
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputPathError(f"{what} {str(p)!r} is not writable ({e.strerror or e}); choose a writable "
                              f"directory") from None
    return p


def writable_file(path: str | Path, what: str) -> Path:
    """Check that a file can be written at ``path`` (its directory created and writable, the path not a directory)."""
    p = Path(path)
    if p.is_dir():
        raise OutputPathError(f"{what} {str(p)!r} is a directory; give a file path such as {p / 'out.json'}")
    writable_dir(p.parent if str(p.parent) else Path("."), what)
    return p


__all__ = ["OutputPathError", "writable_dir", "writable_file"]
