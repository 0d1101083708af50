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


# Documented environment variables that name data and teachers (README "Commands"); recorded paths use them.
ENV_PATHS = ("MIXACM_CIFAR10_JPEG", "MIXACM_IMAGENET", "MIXACM_DATA_ROOT", "MIXACM_CACHE",
             "MIXACM_TEACHER_CIFAR100_WRN28_10", "MIXACM_TEACHER_IMAGENET32_WRN28_10")


def _env_roots() -> list[tuple[str, Path]]:
    roots = [(v, Path(os.environ[v]).resolve()) for v in ENV_PATHS if os.environ.get(v)]
    # the default place of the CIFAR-10 JPEG copy (mixacm.data): ../shared/data/cifar10-jpeg beside the checkout
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpeg"
    if not any(v == "MIXACM_CIFAR10_JPEG" for v, _ in roots):
        roots.append(("MIXACM_CIFAR10_JPEG", default.resolve()))
    return roots


def portable(obj, base: str | Path | None = None):
    """``obj`` with every absolute path string rewritten so that it names no directory of this machine: relative
    to ``base`` (the run or results directory) when under it, else ``${VAR}/...`` for a documented environment
    variable's directory, else ``~/...`` under the home directory. Dicts and lists are walked; other values kept."""
    if isinstance(obj, dict):
        return {k: portable(v, base) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(portable(v, base) for v in obj)
    if not (isinstance(obj, str) and obj.startswith(os.sep)):
        return obj
    p = Path(obj).resolve()
    if base is not None:
        b = Path(base).resolve()
        if p == b or b in p.parents:
            return p.relative_to(b).as_posix() or "."
    for var, root in _env_roots():
        if p == root or root in p.parents:
            rel = p.relative_to(root).as_posix()
            return f"${{{var}}}" + ("" if rel == "." else f"/{rel}")
    home = Path.home().resolve()
    if home in p.parents:
        return "~/" + p.relative_to(home).as_posix()
    return obj


__all__ += ["ENV_PATHS", "portable"]
