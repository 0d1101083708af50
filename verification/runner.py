"""Run an experiment plan (teacher + students x seeds -> evaluations) and write results in the schema.

A plan (``verification/plans.py``) names runs (trainer overrides, which run is whose teacher) and the paper cells
they fill. ``run_plan`` trains every (run, seed) into ``OUT/runs/<key>/seed<s>/`` (skipped when its
``summary.json`` exists: the plan is resumable), evaluates each checkpoint once on the same seeded test subset
(``OUT/evals/<key>-s<seed>.json``), then writes

- ``OUT/results.json``: provenance + one record per paper cell (mean ± std over seeds; ``verification/schema.py``),
- ``OUT/claims.json``: the claims' verdicts computed from those records (``verification/claims.py``),
- ``OUT/acm_profiles.json`` (+ ``.svg``) when the plan asks for the Supp. Fig. 4 view.

Nothing here is read back from a stored result of an earlier session: a fresh OUT recomputes everything.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mixacm.paths import portable

from . import schema
from .results_dir import eval_path, eval_state_dir, run_dir as run_dir_of


@dataclass(frozen=True)
class RunSpec:
    key: str
    overrides: dict[str, Any]
    teacher: str | None = None  # key of the run whose checkpoint teaches this one
    seeded: bool = True  # False: trained once with the plan's first seed and shared (the teacher)
    # evaluated on the test subset (clean accuracy always); FGSM is cheap and lets the gradient-masking self-check
    # (a one-step attack beating a many-step one) run on every model
    attacks: tuple[str, ...] = ("fgsm", "pgd20")
    seeds: tuple[int, ...] | None = None  # None: the plan's seeds (the gpu tier: 5 for some rows, 1 for others)


@dataclass(frozen=True)
class CellSpec:
    table: str
    row: str
    column: str
    run: str  # RunSpec key
    metric: str  # "clean" | an attack name of the run's evaluation | "worst_case"
    setting: dict[str, Any] = field(default_factory=dict)
    eps: float | None = None  # evaluation radius of this cell; None: the plan's eval_eps (Table 2 has 2/255, 4/255)


@dataclass
class Plan:
    name: str
    tier: str  # "smoke" | "cpu" | "gpu"
    base: dict[str, Any]  # trainer overrides shared by every run
    runs: list[RunSpec]
    cells: list[CellSpec]
    seeds: tuple[int, ...] = (0,)
    eval_n: int | None = 500  # seeded test subset size (None = whole test split)
    eval_eps: float = 8 / 255
    scale: str = ""  # how this plan differs from the paper's setting (stored in every record)
    acm_profiles: dict[str, str] = field(default_factory=dict)  # fig4 role -> run key ("teacher", "student", "natural")
    acm_n: int = 200
    data_root: str | None = None
    autoattack_runs: tuple[str, ...] = ()  # runs also evaluated with AutoAttack (standard), on its own subset ...
    autoattack_n: int = 100  # ... of this many test images (AutoAttack is ~100x costlier than PGD-20 on CPU)
    autoattack_seeds: int = 1  # ... for the first this-many seeds
    eval_max_iterations: int | None = None  # cap on every attack's iterations (rehearsals only; recorded)
    keep_checkpoints: bool = True  # False: a run's *.pt files are deleted once all its evaluations are stored
    extra_records: list[dict[str, Any]] = field(default_factory=list)  # computed without training (size ratios)
    streamed_eval_n: int = 5000  # test images read from a streamed data set (ImageNet), which is never held whole


def _ordered(runs: list[RunSpec]) -> list[RunSpec]:
    """Teachers before their students; unknown teacher keys are an error naming the valid keys."""
    by_key = {r.key: r for r in runs}
    done: list[RunSpec] = []
    seen: set[str] = set()

    def visit(r: RunSpec, stack: tuple[str, ...] = ()) -> None:
        if r.key in seen:
            return
        if r.key in stack:
            raise ValueError(f"plan has a teacher cycle through {r.key!r}")
        if r.teacher is not None:
            if r.teacher not in by_key:
                raise ValueError(f"run {r.key!r}: unknown teacher run {r.teacher!r}; valid: {sorted(by_key)}")
            visit(by_key[r.teacher], stack + (r.key,))
        seen.add(r.key)
        done.append(r)

    for r in runs:
        visit(r)
    return done


def _seeds(plan: Plan, run: RunSpec) -> tuple[int, ...]:
    seeds = run.seeds if run.seeds is not None else plan.seeds
    return seeds if run.seeded else seeds[:1]


def _dataset(plan: Plan, run: RunSpec) -> str:
    return {**plan.base, **run.overrides}.get("dataset", "digits")


def _relocated(obj: Any, old: str, new: str) -> Any:
    """A stored summary of a results dir that has since moved (copied from another machine, renamed): its paths
    under the place it was trained in name the same files where they are now."""
    if isinstance(obj, dict):
        return {k: _relocated(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_relocated(v, old, new) for v in obj]
    if isinstance(obj, str) and old != new and (obj == old or obj.startswith(old + os.sep)):
        return new + obj[len(old):]
    return obj


def _train_one(plan: Plan, run: RunSpec, seed: int, out: Path, teacher_ckpt: str | None) -> dict[str, Any]:
    from mixacm.config import load_config
    from mixacm.train import train

    run_dir = run_dir_of(out, run.key, seed)
    done = run_dir / "summary.json"
    if done.is_file():
        summary = json.loads(done.read_text())
        trained_in = Path(summary.get("run_dir") or run_dir).parents[2]  # <out>/runs/<key>/seed<k> -> <out>
        return _relocated(summary, str(trained_in), str(out))
    overrides = {**plan.base, **run.overrides, "seed": seed}
    if plan.data_root is not None:
        overrides["data_root"] = plan.data_root
    if teacher_ckpt is not None:
        overrides["teacher"] = teacher_ckpt
    cfg = load_config(None, overrides)
    launcher = os.environ.get("MIXACM_TORCHRUN")
    if not launcher:
        return train(cfg, run_dir, resume=(run_dir / "last.pt").is_file())
    return _train_torchrun(cfg, run_dir, launcher)


def _train_torchrun(cfg, run_dir: Path, launcher: str) -> dict[str, Any]:
    """The same training through torchrun (``$MIXACM_TORCHRUN`` holds its flags, e.g. ``--nproc_per_node=8`` or
    the rendezvous flags of a multi-node job): ``mixacm train`` on the resolved config, exactly as a user runs it."""
    import shlex
    import subprocess
    import sys

    from mixacm.config import to_dict

    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = run_dir / "requested_config.json"
    cfg_path.write_text(json.dumps(to_dict(cfg), indent=1))
    cmd = [sys.executable, "-m", "torch.distributed.run", *shlex.split(launcher), "-m", "mixacm.cli", "train",
           str(cfg_path), "--run-dir", str(run_dir)] + (["--resume"] if (run_dir / "last.pt").is_file() else [])
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun training of {run_dir} failed (exit {proc.returncode}): {shlex.join(cmd)}")
    return json.loads((run_dir / "summary.json").read_text())


def _eps_tag(plan: Plan, eps: float) -> str:
    """'' for the plan's radius (the file names of earlier records stay valid), else '-eps<k>_255'."""
    return "" if abs(eps - plan.eval_eps) < 1e-12 else f"-eps{round(eps * 255, 3):g}_255"


def eps_text(eps: float) -> str:
    """A radius as a user writes it: "8/255" when it is a whole number of 255ths to the 6 decimals a record keeps,
    else the number ("0.1", "0.0314")."""
    k = round(eps * 255)
    return f"{k}/255" if k > 0 and abs(eps - k / 255) < 5e-7 else f"{eps:g}"


def _eval_path(out: Path, run: RunSpec, seed: int, suffix: str = "") -> Path:
    return eval_path(out, run.key, seed, suffix)


def _cached_eval(path: Path, n: int | None, attacks: tuple[str, ...], *, set_aside: bool = False
                 ) -> dict[str, Any] | None:
    """The stored evaluation at ``path`` if it used this subset size and these attacks, else None. With
    ``set_aside``, a stored evaluation of another subset/attacks is renamed ``<stem>-n<N>.json`` (kept, never
    reused) so a fresh one can take its place."""
    if not path.is_file():
        return None
    cached = json.loads(path.read_text())
    if cached["config"]["n"] == n and cached["config"]["attacks"] == list(attacks):
        return cached
    if set_aside:
        path.rename(path.with_name(f"{path.stem}-n{cached['config']['n']}.json"))
    return None


def _eval_device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def _evaluate_one(plan: Plan, run: RunSpec, seed: int, summary: dict[str, Any], out: Path,
                  test: tuple[Any, Any], *, attacks: tuple[str, ...] | None = None, n: int | None = None,
                  eps: float | None = None, suffix: str = "") -> dict[str, Any]:
    from mixacm.evaluate import evaluate
    from mixacm.train import load_checkpoint_model

    attacks = run.attacks if attacks is None else attacks
    n = plan.eval_n if n is None else n
    eps = plan.eval_eps if eps is None else eps
    suffix = _eps_tag(plan, eps) + suffix
    path = _eval_path(out, run, seed, suffix)
    # the plan may have changed (e.g. a larger AA subset); an evaluation of the whole split stores the split's size
    cached = _cached_eval(path, len(test[1]) if n is None else n, attacks, set_aside=True)
    if cached is not None:
        return cached
    device = _eval_device()
    model = load_checkpoint_model(summary["checkpoint"]).to(device)
    print(f"[{plan.name}] evaluate {run.key} seed {seed}: clean + {', '.join(attacks) or 'nothing else'} on "
          f"{n or 'all'} test images, eps {eps_text(eps)}", flush=True)
    res = evaluate(model, test[0], test[1], attacks=list(attacks), eps=eps, n=n, seed=0, device=device,
                   progress=False, max_iterations=plan.eval_max_iterations,
                   state_dir=eval_state_dir(out, run.key, seed, suffix, n))
    res.pop("per_sample", None)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=1))
    tmp.replace(path)
    return res


def metric_value(res: dict[str, Any], metric: str) -> float:
    """Percent accuracy of one metric from an evaluate() result."""
    if metric == "clean":
        return 100.0 * res["clean"]["accuracy"]
    if metric == "worst_case":
        return 100.0 * res["worst_case"]["robust_accuracy"]
    if metric not in res["attacks"]:
        raise KeyError(f"metric {metric!r} not evaluated; have clean, worst_case, {sorted(res['attacks'])}")
    return 100.0 * res["attacks"][metric]["robust_accuracy"]


def metric_mask(res: dict[str, Any], metric: str) -> list[int] | None:
    """Per-image 0/1 result of one metric from an evaluate() result, as evaluate() writes it or bit-packed as a
    record keeps it (``reports.archive.compact_masks``); None when the result kept no masks."""
    from mixacm.masks import unpack

    part, name = (res["clean"], "correct_mask") if metric == "clean" else \
        (res["worst_case"], "robust_mask") if metric == "worst_case" else (res["attacks"].get(metric, {}), "robust_mask")
    if part.get(name) is not None:
        return part[name]
    if part.get(name + "_packed") is not None:
        return unpack(part[name + "_packed"], res["n_eval"]).astype(int).tolist()
    return None


def per_image(evals: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    """The record's per-image block for one metric over its seeds' evaluations (``schema.PER_IMAGE``): every
    seed's mask, bit-packed, on the same test images; None when a seed's evaluation kept no mask or the seeds'
    evaluations saw different images."""
    from mixacm.masks import indices_sha256, pack

    masks, keys = [], set()
    for res in evals:
        m = metric_mask(res, metric)
        key = res.get("indices_sha256") or (indices_sha256(res["indices"]) if "indices" in res else None)
        if m is None or key is None:
            return None
        masks.append(pack(m))
        keys.add((key, len(m)))
    if len(keys) != 1:
        return None
    (key, n), = keys
    return {"n": n, "indices_sha256": key, "masks": masks}


def _setting(plan: Plan, run: RunSpec, cell: CellSpec) -> dict[str, Any]:
    cfg = {**plan.base, **run.overrides}
    eps = plan.eval_eps if cell.eps is None else cell.eps
    s = {k: None for k in schema.SETTING_KEYS}
    s.update(dataset=cfg.get("dataset"), student=cfg.get("model"), method=cfg.get("method"),
             attack=cell.metric, eps=None if cell.metric == "clean" else round(eps, 6),
             data_fraction=cfg.get("data_fraction", 1.0), scale=plan.scale, run=run.key,
             eval_n=plan.autoattack_n if cell.metric == "autoattack" else plan.eval_n)
    if run.teacher:
        s["teacher"] = run.teacher
    s.update(cell.setting)
    return s


def expected_cost(overrides: dict[str, Any]) -> float:
    """Relative training cost of a run (for ETAs): epochs x data fraction x forward passes per example (the cost
    plan's ``costs.train_passes``, student and teacher alike) x model width^2 x depth; unknown models and methods
    count as a WRN-16-1 natural run."""
    from mixacm.models import wrn_depth_width
    from verification.costs import train_passes

    dw = wrn_depth_width(str(overrides.get("model", ""))) or (16, 1)
    method = overrides.get("method", "natural")
    steps = int(overrides.get("attack_steps") or (10 if method in ("trades", "mart", "awp", "fat") else 7))
    try:
        passes = sum(train_passes(method, steps, int(overrides.get("free_replays", 1))))
    except KeyError:
        passes = sum(train_passes("natural", steps))
    return float(overrides.get("epochs", 1)) * float(overrides.get("data_fraction", 1.0)) * passes * dw[1] ** 2 * dw[0]


class _Progress:
    """'run k of N' lines with an ETA: the time spent per unit of expected cost (``expected_cost``) on the runs
    trained so far in this session, times the expected cost still to come (expensive methods often run last, so an
    average time per run would mislead)."""

    def __init__(self, name: str, costs: list[float], clock=time.time):
        self.name, self.costs, self.k, self.clock = name, costs, 0, clock
        self.t_last, self.spent, self.done_cost = clock(), 0.0, 0.0

    def next(self, what: str, cached: bool) -> None:
        now = self.clock()
        if self.k > 0 and not self._prev_cached:  # the previous run was trained (and evaluated) just now
            self.spent += now - self.t_last
            self.done_cost += self.costs[self.k - 1]
        self.t_last, self._prev_cached = now, cached
        self.k += 1
        left = sum(self.costs[self.k - 1:]) if not cached else sum(self.costs[self.k:])
        eta = f", ETA {self.spent / self.done_cost * left / 60:.1f} min" if self.done_cost > 0 and left > 0 else ""
        print(f"[{self.name}] run {self.k} of {len(self.costs)}: {what}{' (stored)' if cached else ''}{eta}",
              flush=True)


@dataclass
class _PlanRun:
    """What one call of ``run_plan`` accumulates: each (run, seed)'s training summary and evaluations, and the test
    splits loaded so far (each data set's once)."""
    plan: Plan
    out: Path
    ordered: list[RunSpec]
    summaries: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    evals: dict[tuple[str, int, float], dict[str, Any]] = field(default_factory=dict)
    aa_evals: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    tests: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def test_split(self, run: RunSpec) -> tuple[Any, Any]:
        from mixacm.data import is_streamed, load_split

        name = _dataset(self.plan, run)
        if name not in self.tests:
            self.tests[name] = load_split(name, "test", self.plan.data_root, limit=self.plan.streamed_eval_n) \
                if is_streamed(name, self.plan.data_root) else load_split(name, "test", self.plan.data_root)
        return self.tests[name]

    def finished(self, run: RunSpec) -> bool:
        return all((run_dir_of(self.out, run.key, s) / "summary.json").is_file() for s in _seeds(self.plan, run))


def run_plan(plan: Plan, out: str | Path, *, only_finished: bool = False) -> dict[str, Any]:
    """Train, evaluate, aggregate; returns the results object (also written to OUT/results.json).

    ``only_finished``: train nothing; aggregate the runs whose every seed has finished (cells of other runs are
    left out, so the claims that need them come out 'inconclusive' with the missing cell named)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started, t0 = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.time()
    st = _PlanRun(plan, out, _ordered(plan.runs))
    if only_finished:
        st.ordered = [r for r in st.ordered if st.finished(r)]
    _train_and_evaluate(st)
    _autoattack(st, only_finished)
    records = _records(st)
    return _write_outputs(st, records, started, time.time() - t0)


def _train_and_evaluate(st: _PlanRun) -> None:
    """Every (run, seed) in teacher-first order: trained (or read back when finished), then evaluated at each radius
    its cells ask for; a checkpoint nobody reads again is deleted once evaluated when the plan does not keep them."""
    plan, out = st.plan, st.out
    eps_of: dict[str, list[float]] = {}  # run -> the radii its cells are evaluated at
    for cell in plan.cells:
        e = plan.eval_eps if cell.eps is None else cell.eps
        if e not in eps_of.setdefault(cell.run, []):
            eps_of[cell.run].append(e)
    progress = _Progress(plan.name, [expected_cost({**plan.base, **r.overrides}) for r in st.ordered
                                     for _ in _seeds(plan, r)])
    # checkpoints read after a run's own evaluation: teachers, AutoAttack runs, the Supp. Fig. 4 models
    still_needed = ({r.teacher for r in plan.runs if r.teacher} | set(plan.autoattack_runs)
                    | set(plan.acm_profiles.values()))
    for run in st.ordered:
        for seed in _seeds(plan, run):
            t_ckpt = None
            if run.teacher is not None:
                t_run = next(r for r in plan.runs if r.key == run.teacher)
                t_seed = seed if t_run.seeded else _seeds(plan, t_run)[0]
                t_ckpt = st.summaries[(run.teacher, t_seed)]["checkpoint"]
            progress.next(f"{run.key} seed {seed}", st.finished(run))
            st.summaries[(run.key, seed)] = _train_one(plan, run, seed, out, t_ckpt)
            for e in eps_of.get(run.key, [plan.eval_eps]):
                st.evals[(run.key, seed, e)] = _evaluate_one(plan, run, seed, st.summaries[(run.key, seed)], out,
                                                             st.test_split(run), eps=e)
            if not plan.keep_checkpoints and run.key not in still_needed:
                _drop_checkpoints(out, run.key, seed)  # evaluated and nobody's teacher: free the disk now


def _autoattack(st: _PlanRun, only_finished: bool) -> None:
    """AutoAttack last: the costliest evaluation, on its own (smaller) seeded subset, for the plan's first
    ``autoattack_seeds`` seeds of each AutoAttack run (~10 s per robust point on 2 cores)."""
    plan, out = st.plan, st.out
    for run in st.ordered:
        if run.key not in plan.autoattack_runs:
            continue
        for seed in _seeds(plan, run)[:plan.autoattack_seeds]:
            if only_finished and _cached_eval(_eval_path(out, run, seed, "-aa"), plan.autoattack_n,
                                              ("autoattack",)) is None:
                continue
            st.aa_evals[(run.key, seed)] = _evaluate_one(plan, run, seed, st.summaries[(run.key, seed)], out,
                                                         st.test_split(run), attacks=("autoattack",),
                                                         n=plan.autoattack_n, suffix="-aa")


def _records(st: _PlanRun) -> list[dict[str, Any]]:
    """One record per paper cell of a run that finished: the metric over seeds with the per-image masks."""
    plan, out = st.plan, st.out
    summaries, evals, aa_evals = st.summaries, st.evals, st.aa_evals
    by_key = {r.key: r for r in st.ordered}
    records = list(plan.extra_records)
    for cell in plan.cells:
        if cell.run not in by_key:
            continue  # only_finished: this run has not finished
        run = by_key[cell.run]
        seeds = list(_seeds(plan, run))
        eps = plan.eval_eps if cell.eps is None else cell.eps
        masks = None
        if cell.metric == "autoattack" and run.key in plan.autoattack_runs:
            seeds = [s for s in seeds if (run.key, s) in aa_evals]
            if not seeds:
                continue
            values = [metric_value(aa_evals[(run.key, s)], cell.metric) for s in seeds]
            masks = per_image([aa_evals[(run.key, s)] for s in seeds], cell.metric)
        elif cell.metric == "step_time_s":
            values = [summaries[(run.key, s)]["step_time_s"] for s in seeds]
        else:
            values = [metric_value(evals[(run.key, s, eps)], cell.metric) for s in seeds]
            masks = per_image([evals[(run.key, s, eps)] for s in seeds], cell.metric)
        cfgs = summaries[(run.key, seeds[0])]["config"]
        wall = sum(summaries[(run.key, s)]["wall_time_s"] for s in seeds)
        setting = _setting(plan, run, cell)
        if masks is not None:
            setting["eval_n"] = masks["n"]  # the images actually evaluated (None in the plan means all of them)
        records.append(schema.make_record(cell.table, cell.row, cell.column, setting, values,
                                          seeds, {"train": portable(cfgs, out), "eval": {"n": plan.eval_n, "eps": eps,
                                                                          "attacks": list(run.attacks),
                                                                          "max_iterations": plan.eval_max_iterations}},
                                          wall, per_image=masks))
    if plan.acm_profiles and all(k in by_key for k in plan.acm_profiles.values()):
        records += _acm_profile_records(plan, summaries, st.test_split(by_key[plan.acm_profiles["teacher"]]), out)
    return records


def _write_outputs(st: _PlanRun, records: list[dict[str, Any]], started: str, wall: float) -> dict[str, Any]:
    """results.json (provenance + records), claims.json and, for an epoch-scaling plan, scaling.json."""
    plan, out, summaries, evals, aa_evals = st.plan, st.out, st.summaries, st.evals, st.aa_evals
    if not plan.keep_checkpoints:
        for (key, seed) in summaries:
            _drop_checkpoints(out, key, seed)
    prov = schema.provenance(plan.tier, started, round(wall, 1))
    prov.update(plan=plan.name, seeds=list(plan.seeds), scale=plan.scale,
                train_wall_time_s={f"{k}-s{s}": round(v["wall_time_s"], 1) for (k, s), v in summaries.items()},
                eval_wall_time_s={f"{k}-s{s}{_eps_tag(plan, e)}": round(v["wall_time_s"], 1)
                                  for (k, s, e), v in evals.items()})
    prov["eval_wall_time_s"].update({f"{k}-s{s}-aa": round(v["wall_time_s"], 1) for (k, s), v in aa_evals.items()})
    # a resumed plan's own wall time covers only its last session; this is the cost of the whole plan
    prov["plan_compute_s"] = round(sum(prov["train_wall_time_s"].values()) + sum(prov["eval_wall_time_s"].values()), 1)
    results = {"provenance": prov, "results": records}
    schema.validate_results(results)
    _write_json(out / "results.json", results)
    from .claims import evaluate_claims
    claims = evaluate_claims(records)
    _write_json(out / "claims.json", claims)
    from .scaling import analyse
    scaling = analyse(records)
    if scaling is not None:
        _write_json(out / "scaling.json", scaling)
    return results


def _drop_checkpoints(out: Path, key: str, seed: int) -> None:
    for f in run_dir_of(out, key, seed).glob("*.pt"):
        f.unlink()


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)


def _acm_profile_records(plan: Plan, summaries, test, out: Path) -> list[dict[str, Any]]:
    """Supp. Fig. 4: sorted mean ACM per block; distance of each model's profile to the teacher's (per seed)."""
    from mixacm.acm_analysis import acm_profiles, render_acm_plot
    from mixacm.train import load_checkpoint_model

    roles = plan.acm_profiles
    t_run = next(r for r in plan.runs if r.key == roles["teacher"])
    teacher_ckpt = summaries[(t_run.key, plan.seeds[0])]["checkpoint"]
    dists: dict[tuple[str, str], list[float]] = {}
    last = None
    for seed in plan.seeds:
        models = {"teacher": load_checkpoint_model(teacher_ckpt)}
        for role in ("student", "natural"):
            models[role] = load_checkpoint_model(summaries[(roles[role], seed)]["checkpoint"])
        last = acm_profiles(models, test[0], n=plan.acm_n, seed=seed)
        for role in ("student", "natural"):
            for block, d in last["distances"][role]["per_block"].items():
                dists.setdefault((role, block), []).append(d)
    (out / "acm_profiles.json").write_text(json.dumps(last, indent=1))
    render_acm_plot(last, out / "acm_profiles.svg")
    recs = []
    for (role, block), vals in sorted(dists.items()):
        setting = {k: None for k in schema.SETTING_KEYS}
        setting.update(dataset=plan.base.get("dataset"), method=role, scale=plan.scale, acm_n=plan.acm_n)
        recs.append(schema.make_record("fig4", role, f"block {block}", setting, vals, list(plan.seeds),
                                       {"acm_n": plan.acm_n, "runs": roles}, 0.0))
    return recs
