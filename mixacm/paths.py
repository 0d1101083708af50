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


# ---- the CIFAR-10 JPEG copy (data set "cifar10-jpeg"): where it is looked for, the one definition
CIFAR10_JPEG_ENV = "MIXACM_CIFAR10_JPEG"


def default_cifar10_jpeg_candidates() -> list[Path]:
    """Where the copy is looked for without a root or $MIXACM_CIFAR10_JPEG: ../shared/data/cifar10-jpeg beside the
    checkout, then beside the working directory."""
    repo = Path(__file__).resolve().parents[1]
    return [repo.parent / "shared" / "data" / "cifar10-jpeg", Path.cwd().parent / "shared" / "data" / "cifar10-jpeg"]


def resolve_cifar10_jpeg_root(root=None) -> Path:
    """root argument > $MIXACM_CIFAR10_JPEG > ../shared/data/cifar10-jpeg; the first candidate holding a train/ or
    test/ folder; FileNotFoundError naming every place looked in and the fix when none does."""
    if root is not None:
        tried = [Path(root)]
    elif os.environ.get(CIFAR10_JPEG_ENV):
        tried = [Path(os.environ[CIFAR10_JPEG_ENV])]
    else:
        tried = default_cifar10_jpeg_candidates()
    for p in tried:
        if (p / "train").is_dir() or (p / "test").is_dir():
            return p
    raise FileNotFoundError(
        f"CIFAR-10 JPEG copy not found; looked in {', '.join(str(p) for p in tried)}; "
        f"set {CIFAR10_JPEG_ENV}=/path/to/cifar10-jpeg (with train/ and test/ class folders) or pass root=")


def _env_roots() -> list[tuple[str, Path]]:
    roots = [(v, Path(os.environ[v]).resolve()) for v in ENV_PATHS if os.environ.get(v)]
    # the default place of the CIFAR-10 JPEG copy: the first of default_cifar10_jpeg_candidates (beside the checkout)
    if not any(v == CIFAR10_JPEG_ENV for v, _ in roots):
        roots.append((CIFAR10_JPEG_ENV, default_cifar10_jpeg_candidates()[0].resolve()))
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


__all__ += ["ENV_PATHS", "portable", "CIFAR10_JPEG_ENV", "default_cifar10_jpeg_candidates",
            "resolve_cifar10_jpeg_root"]
