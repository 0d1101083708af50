"""Tier selection for verification/: tests marked ``cpu`` run only with ``--cpu``; tests marked ``gpu`` only with
``--gpu`` AND CUDA. Unmarked tests are the smoke tier (default). Options are defined in the root conftest.py."""
from __future__ import annotations

import pytest


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _gpu_plan() -> str:
    from verification import specs

    summary = specs.runnable_summary()
    total = sum(summary.values())
    per = ", ".join(f"{t}: {n}" for t, n in sorted(summary.items(), key=lambda kv: int(kv[0][5:])))
    return f"{total} paper cells ({per})"


def pytest_collection_modifyitems(config, items):
    cpu_on, gpu_on = config.getoption("--cpu"), config.getoption("--gpu")
    cuda = _cuda() if gpu_on else False
    skip_cpu = pytest.mark.skip(reason="cpu tier: pass --cpu (CPU-scale reproduction on real CIFAR-10, about 3.2 h on 2 cores)")
    if not gpu_on:
        skip_gpu = pytest.mark.skip(reason="gpu tier: pass --gpu on a CUDA machine (paper-scale reproduction)")
    elif not cuda:
        skip_gpu = pytest.mark.skip(reason=f"--gpu given but CUDA is not available; on a CUDA machine it would run "
                                           f"{_gpu_plan()}")
    else:
        skip_gpu = None
    for item in items:
        if "cpu" in item.keywords and not cpu_on:
            item.add_marker(skip_cpu)
        if "gpu" in item.keywords and skip_gpu is not None:
            item.add_marker(skip_gpu)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if config.getoption("--gpu") and not _cuda():
        terminalreporter.write_line(f"gpu tier skipped: CUDA not available. It would run {_gpu_plan()}; "
                                    "select a table with -k 'table3:' and resume with --results-dir DIR.")
