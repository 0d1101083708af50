"""The machine a run or an evaluation ran on, described once for every record (run meta, evaluation results, plan
provenance). Bit-exact reruns hold on one CPU type, not across types, so the processor model is part of it."""
from __future__ import annotations

import functools
import os
import platform
import socket
import sys
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")


def cpu_model() -> str | None:
    """Linux' "model name" (platform.processor() is empty there), else platform.processor(), else None."""
    try:
        for line in CPUINFO.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


@functools.lru_cache(maxsize=1)
def describe() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"host": socket.gethostname(), "platform": platform.platform(), "cpu_model": cpu_model(),
                            "cpus": os.cpu_count(), "python": sys.version.split()[0], "torch": torch.__version__,
                            "cuda": torch.cuda.is_available()}
    if info["cuda"]:
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def summary_line(info: dict[str, Any]) -> str:
    """One line for a plan's provenance: host, architecture, CPU model, core count, GPUs."""
    parts = [info["host"], platform.machine(), info.get("cpu_model") or "", f"cpus={info['cpus']}",
             *(info.get("gpus") or [])]
    return " ".join(p for p in parts if p)
