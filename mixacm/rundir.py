"""A training run directory that cannot be mixed up: one writer at a time, resume only with the recorded config,
finished runs extended only when asked, no stale files left behind.

    prepare(run_dir, cfg, resume=..., extend=...) -> RunDirState   (rank 0 only; raises RunDirError, one line)

Layout (``mixacm.train``): config.json, meta.json, metrics.jsonl, last.pt, best.pt, summary.json, and ``.lock``
(held with an exclusive ``flock`` for the life of the training process; the kernel drops it when the process dies,
so a killed run never leaves a stale lock).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, TrainConfig, to_dict

# Keys a resume may change: they change how the run executes, never what it trains.
RESUME_SAFE = frozenset({"progress", "num_threads", "device", "eval_batch_size", "num_workers", "log_every", "compile",
                         "teacher_cache", "data_root", "stream_data", "cudnn_benchmark", "deterministic", "bf16",
                         "channels_last"})
STALE_PATTERNS = (".last.pt.*.tmp", ".best.pt.*.tmp", "*.json.tmp", ".write-probe.*")


class RunDirError(ConfigError):
    """A run directory that cannot be used as asked; the message is one line that names the fix."""


@dataclass
class RunDirState:
    path: Path
    lock_fd: int | None
    finished_epochs: int | None  # epochs of a finished run being extended, else None
    meta: dict[str, Any] | None  # the recorded meta.json when resuming (its start time and history are kept)

    def release(self) -> None:
        if self.lock_fd is not None:
            os.close(self.lock_fd)  # closing drops the flock
            self.lock_fd = None


def _lock(path: Path) -> int:
    import fcntl

    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise RunDirError(f"run dir {str(path)!r} is in use by {holder}; wait for it to finish or choose another "
                          f"--run-dir") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {os.uname().nodename}".encode(), 0)
    return fd


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def config_differences(recorded: dict[str, Any], cfg: TrainConfig, allowed: frozenset[str] = RESUME_SAFE
                       ) -> list[str]:
    """Keys whose value differs between a recorded config and cfg, except the keys a resume may change. A key the
    recorded config lacks was added after it was written: that run behaved as the key's default, so it differs only
    when cfg's value is not the default."""
    now = to_dict(cfg)
    defaults = to_dict(TrainConfig())  # each field's default, as config.json stores it
    keys = sorted(set(recorded) | set(now))
    return [k for k in keys if k not in allowed and recorded.get(k, defaults.get(k)) != now.get(k)]


def prepare(run_dir: str | Path, cfg: TrainConfig, *, resume: bool, extend: bool = False, lock: bool = True
            ) -> RunDirState:
    """Check, lock and clean ``run_dir`` before any long work (see the module docstring). ``lock=False`` (the other
    ranks of a torchrun job): the same read-only checks, no lock, no cleaning (rank 0 does both)."""
    path = Path(run_dir)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"--run-dir {str(path)!r} is a file; give a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"--run-dir {str(path)!r} cannot be created ({e.strerror or e}); choose a writable "
                          f"directory") from None
    if not os.access(path, os.W_OK):
        raise RunDirError(f"--run-dir {str(path)!r} is not writable; choose a writable directory")
    fd = _lock(path) if lock else None
    try:
        for pattern in STALE_PATTERNS if lock else ():  # temp files of a write that a kill interrupted
            for f in path.glob(pattern):
                f.unlink(missing_ok=True)
        last = path / "last.pt"
        summary = _read_json(path / "summary.json")
        finished = summary is not None and summary.get("status") == "completed"
        meta = None
        finished_epochs = None
        if not resume:
            if last.is_file():
                raise RunDirError(f"run dir {str(path)!r} already holds a checkpoint; pass --resume to continue it "
                                  f"or choose another --run-dir")
            for name in ("metrics.jsonl", "summary.json", "best.pt") if lock else ():  # a run killed early
                (path / name).unlink(missing_ok=True)
        else:
            if not last.is_file():
                raise RunDirError(f"--resume: no checkpoint {last}; start without --resume")
            recorded = _read_json(path / "config.json")
            if recorded is not None:
                diff = config_differences(recorded, cfg, RESUME_SAFE | {"epochs"})
                if diff:
                    pairs = ", ".join(f"{k}: {recorded.get(k)!r} -> {getattr(cfg, k, None)!r}" for k in diff)
                    raise RunDirError(f"--resume with a config that differs from the recorded one in {pairs}; resume "
                                      f"with the recorded config or start a new --run-dir")
                old = int(recorded.get("epochs", 0))
                if cfg.epochs != old and not (finished and extend):
                    raise RunDirError(f"--resume with epochs {cfg.epochs} but the run was set up for {old} (its "
                                      f"schedule depends on it); resume with epochs={old}"
                                      + ("" if not finished else ", or pass --extend to train the finished run on"))
                if finished:
                    if not extend:
                        raise RunDirError(f"run in {str(path)!r} has finished ({old} epochs); pass --extend with a "
                                          f"larger epochs to train on, or choose another --run-dir")
                    if cfg.epochs <= old:
                        raise RunDirError(f"--extend needs epochs > {old} (the finished run's), got {cfg.epochs}")
                    finished_epochs = old
            meta = _read_json(path / "meta.json")
        return RunDirState(path, fd, finished_epochs, meta)
    except BaseException:
        if fd is not None:
            os.close(fd)
        raise


__all__ = ["RunDirError", "RunDirState", "prepare", "config_differences", "RESUME_SAFE"]
