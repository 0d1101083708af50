"""Checkpoints that survive crashes: atomic write (temp file + fsync + os.replace), safe load (weights_only=True).

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (nothing that needs code to unpickle):
    {"format": FORMAT, "model": str, "num_classes": int, "in_channels": int, "config": dict,
     "model_state": state_dict, "epoch": int, ...training state (optimizer, scheduler, RNG states)...}
"""
from __future__ import annotations

import errno
import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT = "mixacm-checkpoint-v1"
HASH_KEY = "content_sha256"  # sha256 of every tensor's bytes and every other value, in key order (``content_hash``)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written or used; the message is one line that names the fix."""


def _write(fileobj: io.BufferedWriter, payload: dict[str, Any]) -> None:
    # the one place bytes hit the disk (tests monkeypatch it to simulate a full disk)
    torch.save(payload, fileobj)


def content_hash(obj: Any) -> str:
    """sha256 over a checkpoint payload's content (tensors by dtype, shape and bytes; other values by repr), walking
    dicts in key order; the stored hash itself is left out."""
    h = hashlib.sha256()

    def walk(o: Any, where: str) -> None:
        if isinstance(o, torch.Tensor):
            t = o.detach().cpu().contiguous().reshape(-1)  # 0-d tensors cannot be viewed as bytes
            h.update(f"{where}|{o.dtype}|{tuple(o.shape)}|".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(o, dict):
            for k in sorted(o, key=str):
                if not (where == "" and k == HASH_KEY):
                    walk(o[k], f"{where}/{k}")
        elif isinstance(o, (list, tuple)):
            for i, v in enumerate(o):
                walk(v, f"{where}[{i}]")
        else:
            h.update(f"{where}={o!r};".encode())

    walk(obj, "")
    return h.hexdigest()


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Write payload to path atomically: the previous file at path is replaced only by a complete, synced file. The
    payload's content hash is stored with it and checked on load.

    On any OSError (e.g. ENOSPC, disk full) the temp file is removed, the previous checkpoint stays intact, and a
    CheckpointError says so.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**payload, HASH_KEY: content_hash(payload)}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _write(f, payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        try:  # persist the rename itself (POSIX; harmless where directories cannot be opened)
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        why = "disk full" if e.errno == errno.ENOSPC else f"OS error: {e.strerror or e}"
        kept = f"previous checkpoint kept at {path}" if path.exists() else "no previous checkpoint existed"
        raise CheckpointError(f"could not save checkpoint {path} ({why}); {kept}; free space and rerun "
                              f"with --resume") from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without executing code; corrupt/truncated/foreign files raise a one-line CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} not found; pass an existing .pt file or run directory")
    def corrupt(why: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {str(path)!r} is corrupt or truncated ({why}); delete it and resume "
                               f"from an earlier checkpoint or retrain")

    if not zipfile.is_zipfile(path):  # torch.save always writes a zip archive; a cut-off file loses its directory
        raise corrupt("not a complete zip archive")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for damaged archives
        text = str(e).strip()
        first = text.splitlines()[0][:160] if text else type(e).__name__
        if "Unsupported global" in text or "GLOBAL" in text:
            raise CheckpointError(f"checkpoint {str(path)!r} needs code to unpickle ({_global_name(text)}); only "
                                  f"plain state dicts load with weights_only=True: re-save the state_dict") from None
        raise corrupt(first) from None
    if isinstance(payload, dict) and HASH_KEY in payload and payload[HASH_KEY] != content_hash(payload):
        raise corrupt("content hash differs from the one stored at save time")
    return payload


def _global_name(text: str) -> str:
    for line in text.splitlines():
        if "Unsupported global" in line or "GLOBAL" in line:
            return line.strip()[:120]
    return "unsupported global"


def is_package_checkpoint(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor], *, source: str, expected: str) -> None:
    """load_state_dict(strict=True) with an architecture-mismatch message instead of a key dump."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shape = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shape:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        if shape:
            k = shape[0]
            detail.append(f"{len(shape)} shape mismatches (e.g. {k}: {tuple(state[k].shape)} vs "
                          f"{tuple(own[k].shape)})")
        raise CheckpointError(f"checkpoint {source} does not fit architecture {expected!r}: {'; '.join(detail)}; "
                              f"use the model name the checkpoint was trained with")
    model.load_state_dict(state, strict=True)


__all__ = ["FORMAT", "CheckpointError", "content_hash", "save_checkpoint", "load_checkpoint", "is_package_checkpoint",
           "load_state_strict"]
