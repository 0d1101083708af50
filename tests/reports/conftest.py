"""Inputs for the report tests: the real recorded CPU result set and a small digits-like synthetic set with the
files a plan writes (results.json, evals/*.json with a self-check flag, runs/<key>/seed<s>/{meta,config}.json and
metrics.jsonl)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from verification.schema import make_record, provenance

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "reports" / "recorded" / "cpu"

SCALE = "digits 8x8; SmallCNN Fast-AT teacher -> SmallCNN students (4 ep)"
RUNS = {  # run key -> (clean, robust) per seed, method
    "mixacm": ([80.0, 82.0], [40.0, 42.0], "mixacm"),
    "wo_kd": ([81.0, 83.0], [35.0, 37.0], "mixacm"),
    "only_kd": ([85.0, 86.0], [10.0, 12.0], "kd"),
    "pgd_at": ([70.0, 72.0], [45.0, 47.0], "pgd7_at"),
    "natural": ([95.0, 96.0], [1.0, 2.0], "natural"),
}
FLAG_DETAIL = "7 of 64 points have zero input gradients (gradient masking?)"


def _setting(run: str, attack: str, method: str, **extra) -> dict:
    return {"dataset": "digits", "student": "smallcnn", "method": method, "attack": attack,
            "eps": None if attack == "clean" else 0.1, "data_fraction": extra.pop("data_fraction", 1.0),
            "teacher": None if run == "teacher" else "teacher", "scale": SCALE, "run": run,
            "eval_n": 200, **extra}


def _eval(clean: float, rob: float, flag: bool = False) -> dict:
    checks = [{"name": "inputs_in_unit_range", "status": "ok", "detail": "inputs span [0, 1]"},
              {"name": "nonzero_gradients", "status": "flag" if flag else "ok",
               "detail": FLAG_DETAIL if flag else "all 64 points have nonzero input gradients"},
              {"name": "no_gradient_masking", "status": "skipped", "detail": "needs Square or FGSM among the attacks"}]
    return {"schema": "mixacm.evaluate/1", "config": {"attacks": ["pgd20"], "n": 200, "eps": 0.1}, "n_eval": 200,
            "clean": {"accuracy": clean / 100}, "attacks": {"pgd20": {"robust_accuracy": rob / 100}},
            "self_checks": checks, "warnings": [FLAG_DETAIL] if flag else [], "wall_time_s": 1.0}


def write_digits_set(d: Path) -> Path:
    cfg = lambda method, seed=0: {"train": {"method": method, "model": "smallcnn", "dataset": "digits",  # noqa: E731
                                            "epochs": 4, "data_fraction": 1.0, "lr": 0.05, "seed": seed},
                                  "eval": {"n": 200, "attacks": ["pgd20"]}}
    recs = []
    t6 = {"mixacm": "Std. Setting", "wo_kd": "w/o KD", "only_kd": "Only KD"}
    t3 = {"mixacm": "CIFAR-10 / Ours", "pgd_at": "CIFAR-10 / PGD7-AT", "natural": "CIFAR-10 / Natural"}
    for run, (clean, rob, method) in RUNS.items():
        for metric, vals in (("clean", clean), ("pgd20", rob)):
            s = _setting(run, metric, method)
            if run in t6:
                recs.append(make_record("table6", "Accuracy" if metric == "clean" else "Robustness", t6[run], s,
                                        vals, [0, 1], cfg(method), 10.0))
            if run in t3:
                recs.append(make_record("table3", t3[run], "Acc." if metric == "clean" else "PGD 20", s, vals,
                                        [0, 1], cfg(method), 10.0))
    for frac, (c, r) in ((0.3, ([60.0, 62.0], [30.0, 31.0])), (1.0, ([80.0, 82.0], [40.0, 42.0]))):
        for col, vals in (("clean", c), ("robust", r)):
            recs.append(make_record("fig3", "mixacm", col, _setting(f"mixacm_frac{int(frac * 100)}",
                                                                      "clean" if col == "clean" else "pgd20",
                                                                      "mixacm", data_fraction=frac),
                                    vals, [0, 1], cfg("mixacm"), 5.0))
    for col, vals in (("clean", [70.0, 72.0]), ("robust", [45.0, 47.0])):
        recs.append(make_record("fig3", "pgd7_at", col, _setting("pgd_at", "clean" if col == "clean" else "pgd20",
                                                                 "pgd7_at"), vals, [0, 1], cfg("pgd7_at"), 5.0))
    for col, vals in (("clean", [97.0]), ("robust", [55.0])):  # the teacher's own accuracy, as a record
        recs.append(make_record("teacher", "teacher", col, _setting("teacher", "clean" if col == "clean" else "pgd20",
                                                                    "fast_at"), vals, [0], cfg("fast_at"), 20.0))
    prov = provenance("smoke", "2024-03-04T05:06:07+00:00", 42.0)
    prov.update(plan="digits", seeds=[0, 1], scale=SCALE,
                train_wall_time_s={f"{k}-s{s}": 12.5 for k in RUNS for s in (0, 1)},
                eval_wall_time_s={f"{k}-s{s}": 1.5 for k in RUNS for s in (0, 1)})
    d.mkdir(parents=True, exist_ok=True)
    (d / "results.json").write_text(json.dumps({"provenance": prov, "results": recs}))
    (d / "evals").mkdir(exist_ok=True)
    for run, (clean, rob, _m) in RUNS.items():
        for i, s in enumerate((0, 1)):
            (d / "evals" / f"{run}-s{s}.json").write_text(json.dumps(_eval(clean[i], rob[i],
                                                                             flag=(run, s) == ("wo_kd", 1))))
    for run, (_c, _r, method) in RUNS.items():
        for s in (0, 1):
            rd = d / "runs" / run / f"seed{s}"
            rd.mkdir(parents=True, exist_ok=True)
            (rd / "meta.json").write_text(json.dumps({"seed": s, "git": {"commit": ("abc1234def" if run != "natural"
                                                                                    else "fedcba9876") + "0" * 30,
                                                                         "dirty": False},
                                                      "machine": "testbox x86_64", "device": "cpu",
                                                      "started": 1700000000.0}))
            (rd / "config.json").write_text(json.dumps(cfg(method, s)["train"]))
            (rd / "metrics.jsonl").write_text("".join(
                json.dumps({"epoch": e, "loss": 2.0 / e, "train_acc": 0.2 * e, "val_acc": 0.2 * e,
                            "val_rob": 0.05 * e}) + "\n" for e in range(1, 5)))
    return d


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> Path:
    return write_digits_set(tmp_path_factory.mktemp("digits") / "digits")


@pytest.fixture(scope="session")
def recorded_dir() -> Path:
    if not (RECORDED / "results.json").is_file():
        pytest.skip(f"{RECORDED}/results.json missing")
    return RECORDED


@pytest.fixture(scope="session")
def flag_detail() -> str:
    return FLAG_DETAIL
