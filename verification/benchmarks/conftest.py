"""Benchmarks measure; they do not run in the default (smoke) tier. Run: pytest verification/benchmarks --benchmark-enable"""
import pytest


@pytest.fixture(autouse=True)
def _only_when_enabled(request):
    cfg = request.config
    if cfg.getoption("benchmark_disable", False) and not cfg.getoption("benchmark_enable", False):
        pytest.skip("benchmark: run with --benchmark-enable")
    import torch
    torch.set_num_threads(1)
