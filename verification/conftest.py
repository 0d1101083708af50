"""Tier selection for verification/: tests marked ``cpu`` run only with ``--cpu``; tests marked ``gpu`` only with
``--gpu`` AND (CUDA or ``--rehearse``). Unmarked tests are the smoke tier (default). Options are defined in the root
conftest.py. The gpu tier's runs come from one session fixture (``gpu_tier``): the cells selected (``-k``) become
one plan, run once by ``verification.experiments.run_plan``; each cell's test then reads its record."""
from __future__ import annotations

import os
import time
from pathlib import Path

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


def _rehearsal_root(config) -> Path:
    return Path(config.getoption("--results-dir") or "reports/out/gpu-rehearsal") / "_rehearsal"


def pytest_configure(config):
    if config.getoption("--gpu") and config.getoption("--rehearse"):
        # before the specs are built: the stand-in teachers' env variables decide which cells are runnable
        from verification import rehearsal
        rehearsal.apply(rehearsal.env_for(_rehearsal_root(config).resolve()))


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
                                           f"{_gpu_plan()} (--rehearse runs them at toy amounts here)")
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
        self._by_cell = {(r["table"], r["row"], r["column"]): r for r in results["results"]}

    def record(self, spec: dict) -> dict:
        key = (spec["table"], spec["row"], spec["column"])
        if key not in self._by_cell:
            raise AssertionError(f"{spec['id']}: the run produced no record for this cell")
        return self._by_cell[key]


@pytest.fixture(scope="session")
def gpu_tier(request):
    """Runs the selected cells' plan once (resumable under --results-dir) and serves their records."""
    from verification import plans, rehearsal
    from verification.experiments import run_plan

    config = request.config
    rehearse = config.getoption("--rehearse")
    selected = _selected_specs(request.session)
    out = Path(config.getoption("--results-dir") or ("reports/out/gpu-rehearsal" if rehearse else "reports/out/gpu"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if rehearse:
        root = _rehearsal_root(config).resolve()
        names = sorted({s["train"]["teacher"].split(":", 1)[1] for s in selected if s["kind"] == "train_eval"
                        and (s["train"].get("teacher") or "").startswith("robustbench:")})
        imagenet = any(s["kind"] == "train_eval" and s["train"]["dataset"] == "imagenet" for s in selected)
        rehearsal.apply(rehearsal.prepare(root, names, imagenet=imagenet))
        plan = plans.gpu_plan(selected, rehearsal=rehearsal.amounts(), teacher_cache=rehearsal.teacher_cache(root))
    else:
        plan = plans.gpu_plan(selected, teacher_cache=os.environ.get("MIXACM_TEACHER_CACHE") or out / "_teachers")
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # "run k of N" lines reach the terminal while the plan runs
        results = run_plan(plan, out)
    n_runs = sum(len(r.seeds or plan.seeds) for r in plan.runs)
    config._gpu_tier_summary = (f"gpu tier{' REHEARSAL' if rehearse else ''}: {len(selected)} cells exercised "
                                f"of {len(specs_runnable())} runnable ({len(plan.runs)} training runs, {n_runs} with "
                                f"seeds), {time.time() - t0:.0f} s; results in {out / 'results.json'}")
    return GpuTier(out, results, rehearse)


def specs_runnable() -> list[dict]:
    from verification import specs
    return [s for s in specs.all_specs() if not s["blocked"]]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    summary = getattr(config, "_gpu_tier_summary", None)
    if summary:
        terminalreporter.write_line(summary)
    if config.getoption("--gpu") and config.getoption("--plan"):
        from verification import costs
        session = getattr(terminalreporter, "_session", None)
        selected = _selected_specs(session, include_skipped=True) if session is not None else specs_runnable()
        terminalreporter.write_line(costs.render(costs.plan_costs(selected)))
    elif config.getoption("--gpu") and not _cuda() and not config.getoption("--rehearse"):
        terminalreporter.write_line(f"gpu tier skipped: CUDA not available. It would run {_gpu_plan()}; "
                                    "select a table with -k 'table3:', resume with --results-dir DIR, see its cost "
                                    "with --plan, or rehearse it here with --rehearse.")
