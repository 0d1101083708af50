"""Tier selection for verification/: tests marked ``cpu`` run only with ``--cpu``; tests marked ``gpu`` only with
``--gpu`` AND (CUDA or ``--rehearse``). Unmarked tests are the smoke tier (default). Options are defined in the root
conftest.py. The gpu tier's runs come from one session fixture (``gpu_tier``): the cells selected (``-k``) become
one plan, run once by ``verification.tiers.run_gpu_tier``; each cell's test then reads its record."""
from __future__ import annotations

from pathlib import Path

import pytest

from verification import tiers

from verification.schema import cell_key


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _results_dir(config) -> Path:
    rehearse = config.getoption("--rehearse")
    return Path(config.getoption("--results-dir") or ("reports/out/gpu-rehearsal" if rehearse else "reports/out/gpu"))


def pytest_configure(config):
    if config.getoption("--gpu") and config.getoption("--rehearse"):
        tiers.prepare_rehearsal_env(_results_dir(config))


def pytest_collection_modifyitems(config, items):
    cpu_on, gpu_on = config.getoption("--cpu"), config.getoption("--gpu")
    rehearse, plan_only = config.getoption("--rehearse"), config.getoption("--plan")
    cuda = _cuda() if gpu_on else False
    skip_cpu = pytest.mark.skip(reason="cpu tier: pass --cpu (CPU-scale reproduction on real CIFAR-10, about 3.2 h on 2 cores)")
    if not gpu_on:
        skip_gpu = pytest.mark.skip(reason="gpu tier: pass --gpu on a CUDA machine (paper-scale reproduction), "
                                           "or --gpu --rehearse on any machine")
    elif plan_only:
        skip_gpu = pytest.mark.skip(reason="--plan: the cost plan is printed at the end; nothing is trained")
    elif not (cuda or rehearse):
        skip_gpu = pytest.mark.skip(reason=f"--gpu given but CUDA is not available; on a CUDA machine it would run "
                                           f"{tiers.gpu_tier_description()} (--rehearse runs them at toy amounts here)")
    else:
        skip_gpu = None
    for item in items:
        if "cpu" in item.keywords and not cpu_on:
            item.add_marker(skip_cpu)
        if "gpu" in item.keywords and skip_gpu is not None:
            item.add_marker(skip_gpu)


def _selected_specs(session, *, include_skipped: bool = False) -> list[dict]:
    """The specs of the paper-cell tests that survived -k / deselection, in collection order."""
    out = []
    for item in session.items:
        spec = getattr(item, "callspec", None) and item.callspec.params.get("spec")
        if spec is not None and (include_skipped or not any(m.name == "skip" for m in item.iter_markers())):
            out.append(spec)
    return out


class GpuTier:
    def __init__(self, out: Path, results: dict, rehearse: bool):
        self.out, self.results, self.rehearse = out, results, rehearse
        self._by_cell = {cell_key(r): r for r in results["results"]}

    def record(self, spec: dict) -> dict:
        key = cell_key(spec)
        if key not in self._by_cell:
            raise AssertionError(f"{spec['id']}: the run produced no record for this cell")
        return self._by_cell[key]


@pytest.fixture(scope="session")
def gpu_tier(request):
    """Runs the selected cells' plan once (``verification.tiers.run_gpu_tier``, resumable under --results-dir) and
    serves their records."""
    config = request.config
    rehearse = config.getoption("--rehearse")
    out = _results_dir(config)
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # "run k of N" lines reach the terminal while the plan runs
        results, config._gpu_tier_summary = tiers.run_gpu_tier(_selected_specs(request.session), out,
                                                               rehearse=rehearse)
    return GpuTier(out, results, rehearse)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    summary = getattr(config, "_gpu_tier_summary", None)
    if summary:
        terminalreporter.write_line(summary)
    if config.getoption("--gpu") and config.getoption("--plan"):
        from verification import costs
        session = getattr(terminalreporter, "_session", None)
        selected = _selected_specs(session, include_skipped=True) if session is not None else tiers.runnable_specs()
        measured = config.getoption("--measured")
        terminalreporter.write_line(costs.render(costs.plan_costs(
            selected, measured=costs.load_measured(measured) if measured else None)))
    elif config.getoption("--gpu") and not _cuda() and not config.getoption("--rehearse"):
        terminalreporter.write_line(f"gpu tier skipped: CUDA not available. It would run {tiers.gpu_tier_description()}; "
                                    "select a table with -k 'table3:', resume with --results-dir DIR, see its cost "
                                    "with --plan, or rehearse it here with --rehearse.")
