"""Project-wide pytest setup: hypothesis profiles and the verification tiers' command-line options."""
from __future__ import annotations

import os

from hypothesis import settings

# 'dev' is fast and random; 'ci' is derandomised (reproducible). Numeric tests need no deadline.
settings.register_profile("dev", max_examples=20, deadline=None)
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_addoption(parser):
    group = parser.getgroup("mixacm tiers")
    group.addoption("--cpu", action="store_true", help="run the CPU-scale reproduction on real CIFAR-10")
    group.addoption("--gpu", action="store_true", help="run the paper-scale reproduction (needs CUDA)")
    group.addoption(
        "--data-dir",
        default=os.environ.get("MIXACM_CIFAR10_JPEG"),
        help="CIFAR-10 ImageFolder copy (default: $MIXACM_CIFAR10_JPEG or ../shared/data/cifar10-jpeg)",
    )
    group.addoption("--results-dir", default=None, help="where tier runs write results JSON")
    group.addoption("--rehearse", action="store_true",
                    help="with --gpu: run every selected paper cell through the gpu tier's code at toy amounts "
                         "(generated data, random stand-in teachers) on whatever device there is")
    group.addoption("--plan", action="store_true",
                    help="with --gpu: list the training runs and evaluations of the selected cells with their FLOPs "
                         "and estimated GPU-hours, without training")
    group.addoption("--measured", default=None, metavar="FILE",
                    help="with --gpu --plan: GPU-hours from the rates measured by python -m verification.device_check "
                         "(its b.json, or the record directory holding it) instead of the assumed utilisation")
