"""gpu tier: one test per paper cell with a spec -- train (per row/seed, shared) + evaluate at the paper's full
settings, then compare with the cell's tolerance. Resumable: runs and evaluations are cached under --results-dir
(default reports/out/gpu); records are merged into <results-dir>/results.json in the schema of verification.schema.

Select a table with ``-k 'table3:'`` (the trailing colon keeps table1 from matching table10).
The first two tests (unmarked) are smoke checks that every paper cell has a spec and every spec is a valid config.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from verification import compare, paper_data, schema, specs

ALL = specs.all_specs()
RUNNABLE = [s for s in ALL if not s["blocked"]]


def test_every_cell_has_a_spec():
    assert len(ALL) == len(paper_data.all_cells())
    for s in ALL:
        assert s["kind"] in ("train_eval", "param_ratio")
        assert s["blocked"] or s["kind"] == "param_ratio" or (s["train"] and s["eval"]), s["id"]


def test_specs_are_valid_train_configs():
    config = pytest.importorskip("mixacm.config")  # written by the trainer helper; must exist by the end
    attacks = pytest.importorskip("mixacm.attacks")
    for s in RUNNABLE:
        if s["kind"] != "train_eval":
            continue
        unknown = set(s["train"]) - set(config.FIELD_NAMES)
        assert not unknown, f"{s['id']}: keys {unknown} are not TrainConfig fields"
        for a in s["eval"]["attacks"]:
            attacks.parse_attack(a)


def _results_dir(request) -> Path:
    d = Path(request.config.getoption("--results-dir") or "reports/out/gpu")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _train_and_eval(spec: dict, seed: int, root: Path) -> dict:
    """Train (unless done) and evaluate (unless done) one row group at one seed; returns the evaluation dict."""
    import torch

    from mixacm import data, evaluate, train
    from mixacm.config import TrainConfig

    run_dir = root / spec["group"] / f"seed{seed}"
    eval_path = run_dir / f"eval_{'_'.join(spec['eval']['attacks'])}.json"
    if eval_path.exists():
        return json.loads(eval_path.read_text())
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
    else:
        cfg = TrainConfig(**{**spec["train"], "seed": seed, "device": "cuda", "progress": False})
        summary = train.train(cfg, run_dir, resume=(run_dir / "last.pt").exists())
        summary_path.write_text(json.dumps(summary, default=str))
    model = train.load_checkpoint_model(summary["checkpoint"]).cuda()
    x, y = data.load_split(spec["train"]["dataset"], "test")
    res = evaluate.evaluate(model, x, y, attacks=spec["eval"]["attacks"], eps=spec["eval"]["eps"], n=spec["eval"]["n"],
                            seed=seed, device="cuda", progress=False, state_dir=run_dir / "eval_state")
    res["train_wall_time_s"] = summary.get("wall_time_s", 0.0)
    eval_path.write_text(json.dumps(res))
    torch.cuda.empty_cache()
    return res


def _merge(root: Path, record: dict, started: str, t0: float) -> None:
    path = root / "results.json"
    obj = json.loads(path.read_text()) if path.exists() else {"results": []}
    obj["results"] = [r for r in obj["results"] if (r["table"], r["row"], r["column"]) !=
                      (record["table"], record["row"], record["column"])] + [record]
    obj["provenance"] = schema.provenance("gpu", obj.get("provenance", {}).get("started", started),
                                          obj.get("provenance", {}).get("wall_time_s", 0.0) + time.time() - t0)
    schema.validate_results(obj)
    path.write_text(json.dumps(obj, indent=1))


def _param_ratio(spec: dict) -> float:
    from mixacm.models import build_model

    def count(arch):
        d, w = arch.split("-")[1:]
        return sum(p.numel() for p in build_model(f"wrn-{d}-{w}").parameters() if p.requires_grad)
    return 100.0 * count(spec["student"]) / count(spec["teacher"])


def _param(spec):
    marks = [pytest.mark.gpu]
    if spec["erratum"]:
        marks.append(pytest.mark.xfail(reason=f"paper erratum: {spec['erratum']}", strict=True))
    return pytest.param(spec, id=spec["id"], marks=marks)


@pytest.mark.parametrize("spec", [_param(s) for s in RUNNABLE])
def test_paper_cell(spec, request):
    cell = paper_data.find_cell(spec["table"], spec["row"], spec["column"])
    root = _results_dir(request)
    started, t0 = datetime.now(timezone.utc).isoformat(), time.time()
    if spec["kind"] == "param_ratio":
        runs, wall, config = [_param_ratio(spec)], time.time() - t0, {"kind": "param_ratio"}
    else:
        runs, wall = [], 0.0
        for seed in spec["seeds"]:
            res = _train_and_eval(spec, seed, root)
            att = spec["eval"]["attack"]
            acc = res["clean"]["accuracy"] if att == "clean" else res["attacks"][att]["robust_accuracy"]
            runs.append(100.0 * acc)
            wall += res.get("wall_time_s", 0.0) + res.get("train_wall_time_s", 0.0)
        config = {"train": spec["train"], "eval": spec["eval"]}
    record = schema.make_record(cell["table"], cell["row"], cell["column"], cell["setting"], runs,
                                spec["seeds"] or [0], config, wall)
    _merge(root, record, started, t0)
    compare.assert_matches(record, cell)
