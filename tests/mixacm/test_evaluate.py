"""evaluate(): worst-case aggregation, self-check flags on planted faults, PGD vs APGD-CE agreement, resumable runs,
bad input, and the CLI (with the checkpoint loader and data loader stubbed so the test does not depend on them)."""
from __future__ import annotations

import json
import sys
import types

import pytest
import torch
from torch import nn

from _digits_mlp import trained_digits_mlp
from mixacm import selfcheck
from mixacm.evaluate import EvaluationWarning, evaluate, main

AA_FAST = {"square_queries": 300, "n_iter": 20}  # tests only; the default is the standard AutoAttack


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def linear_model(seed=0, scale=3.0, d=48, k=10):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Flatten(), nn.Linear(d, k))
    with torch.no_grad():
        m[1].weight.mul_(scale)
    return m.eval()


def data(n=32, seed=0, model=None):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 4, 4, generator=g)
    if model is None:
        return x, torch.randint(0, 10, (n,), generator=g)
    with torch.no_grad():
        return x, model(x).argmax(1)


def status(result, name):
    return {c["name"]: c for c in result["self_checks"]}[name]["status"]


digits_mlp = trained_digits_mlp


# ------------------------------------------------------------------------------------------------ aggregation

def test_worst_case_is_and_of_per_attack_masks_and_json_able():
    model = linear_model(scale=1.0)
    x, y = data(40, model=model)
    y[:5] = (y[:5] + 1) % 10  # some clean errors
    r = evaluate(model, x, y, attacks=["fgsm", "pgd5", "cw20", "apgd-ce"], eps=6 / 255, batch_size=16,
                 progress=False, aa_options=AA_FAST)
    json.dumps(r)  # JSON-able
    correct = torch.tensor(r["clean"]["correct_mask"], dtype=torch.bool)
    assert r["clean"]["correct"] == 35 and not correct[:5].any()
    worst = correct.clone()
    for name, a in r["attacks"].items():
        m = torch.tensor(a["robust_mask"], dtype=torch.bool)
        assert not (m & ~correct).any(), f"{name}: a clean error counted as robust"
        assert a["robust"] == int(m.sum()) and a["robust_accuracy"] == pytest.approx(m.float().mean().item())
        worst &= m
    assert r["worst_case"]["robust_mask"] == worst.int().tolist()
    assert r["worst_case"]["robust_accuracy"] <= min(a["robust_accuracy"] for a in r["attacks"].values())
    per = [a["robust_accuracy"] for a in r["attacks"].values()]
    assert 0 < r["worst_case"]["robust_accuracy"] < r["clean"]["accuracy"], f"degenerate test, per-attack {per}"


def test_cascade_attacks_only_still_robust_points():
    model = linear_model(scale=1.0)
    x, y = data(40, model=model)
    r = evaluate(model, x, y, attacks=["fgsm", "pgd10", "cw20"], eps=6 / 255, progress=False, individual=False)
    accs = [a["robust_accuracy"] for a in r["attacks"].values()]
    assert accs == sorted(accs, reverse=True), f"cascade numbers must be cumulative (non-increasing): {accs}"
    assert r["worst_case"]["robust_accuracy"] == accs[-1]


def test_seeded_subset():
    model = linear_model()
    x, y = data(50, model=model)
    a = evaluate(model, x, y, attacks=["fgsm"], n=20, seed=3, progress=False)
    b = evaluate(model, x, y, attacks=["fgsm"], n=20, seed=3, progress=False)
    c = evaluate(model, x, y, attacks=["fgsm"], n=20, seed=4, progress=False)
    assert a["indices"] == b["indices"] != c["indices"] and len(set(a["indices"])) == 20


# ------------------------------------------------------------------------------------------- planted faults

def test_flags_model_left_in_train_mode_and_restores_it():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.BatchNorm1d(16), nn.Dropout(0.5), nn.Linear(16, 10))
    model.train()
    x, y = data(16)
    with pytest.warns(EvaluationWarning, match="train mode"):
        r = evaluate(model, x, y, attacks=["fgsm"], progress=False)
    assert status(r, "eval_mode") == "flag"
    assert status(r, "deterministic") == "ok", "the run itself must use eval mode"
    assert all(m.training for m in model.modules()), "the caller's mode must be restored"
    assert status(evaluate(model.eval(), x, y, attacks=["fgsm"], progress=False), "eval_mode") == "ok"


def test_flags_softmax_outputs_and_autoattack_flags_them_too():
    model = nn.Sequential(linear_model(), nn.Softmax(dim=1)).eval()
    x, y = data(8, model=model)
    with pytest.warns(EvaluationWarning, match="probabilities"):
        r = evaluate(model, x, y, attacks=["apgd-ce"], progress=False, aa_options=AA_FAST)
    assert status(r, "outputs_are_logits") == "flag"
    assert status(r, "autoattack_flags") == "flag"
    assert any("probability" in f for f in {c["name"]: c for c in r["self_checks"]}["autoattack_flags"]["flags"])
    clean = evaluate(linear_model(), x, y, attacks=["apgd-ce"], progress=False, aa_options=AA_FAST)
    assert status(clean, "outputs_are_logits") == "ok" and status(clean, "autoattack_flags") == "ok"


class Quantised(nn.Module):
    """Planted gradient masking: rounding the input to 5 grey levels has zero derivative everywhere."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(torch.round(x * 4) / 4)


def test_flags_gradient_masking():
    model = Quantised(linear_model()).eval()
    x, y = data(32, model=model)
    with pytest.warns(EvaluationWarning, match="gradient masking"):
        r = evaluate(model, x, y, attacks=["fgsm", "pgd10", "square"], eps=16 / 255, progress=False,
                     aa_options=AA_FAST)
    assert status(r, "nonzero_gradients") == "flag"
    assert status(r, "no_gradient_masking") == "flag", r["attacks"]
    honest = evaluate(linear_model(), x, y, attacks=["fgsm", "pgd10", "square"], eps=16 / 255, progress=False,
                      aa_options=AA_FAST)
    assert status(honest, "nonzero_gradients") == "ok" and status(honest, "no_gradient_masking") == "ok"


def test_rejects_inputs_outside_unit_range():
    model = linear_model()
    x, y = data(8)
    with pytest.raises(ValueError, match=r"outside \[0,1\].*inside the model"):
        evaluate(model, (x - 0.5) / 0.25, y, attacks=["fgsm"], progress=False)


def test_flags_model_expecting_normalised_inputs():
    # planted: labels are what the model predicts on standardised inputs, as for a model trained on them
    model = linear_model(scale=1.0)
    x, _ = data(64)
    mean, std = x.mean(dim=(0, 2, 3), keepdim=True), x.std(dim=(0, 2, 3), keepdim=True)
    with torch.no_grad():
        y = model((x - mean) / std).argmax(1)
    with pytest.warns(EvaluationWarning, match="normalised inputs"):
        r = evaluate(model, x, y, attacks=["fgsm"], progress=False)
    assert status(r, "model_takes_unit_range") == "flag"
    with torch.no_grad():
        y_raw = model(x).argmax(1)
    assert status(evaluate(model, x, y_raw, attacks=["fgsm"], progress=False), "model_takes_unit_range") == "ok"
    good, xd, yd = digits_mlp()
    assert status(evaluate(good, xd, yd, attacks=["fgsm"], n=128, progress=False), "model_takes_unit_range") == "ok"


def test_flags_attack_leaving_the_eps_ball(monkeypatch):
    import mixacm.evaluate as ev

    def broken(spec, model, x, y, *, eps, generator=None):
        return (x + 2 * eps).clamp(0, 1)

    monkeypatch.setattr(ev, "run_white_box", broken)
    model = linear_model()
    x, y = data(8, model=model)
    with pytest.warns(EvaluationWarning, match="max l-inf"):
        r = evaluate(model, x, y, attacks=["pgd5"], eps=4 / 255, progress=False)
    assert status(r, "adversarial_valid:pgd5") == "flag"


def test_pgd_monotone_check_flags_planted_non_monotone_results():
    res = {"pgd5": {"kind": "pgd", "steps": 5, "restarts": 1, "robust_accuracy": 0.40, "white_box": True},
           "pgd50": {"kind": "pgd", "steps": 50, "restarts": 1, "robust_accuracy": 0.60, "white_box": True}}
    assert selfcheck.check_pgd_monotone(res, n=500)["status"] == "flag"
    res["pgd50"]["robust_accuracy"] = 0.41  # within noise (2 se of 500 points ~ 0.044)
    assert selfcheck.check_pgd_monotone(res, n=500)["status"] == "ok"
    assert selfcheck.check_pgd_monotone({"pgd5": res["pgd5"]}, n=500)["status"] == "skipped"


def test_logit_check_unit():
    assert selfcheck.check_logits(torch.randn(8, 10) * 5)["status"] == "ok"
    assert selfcheck.check_logits(torch.randn(8, 10).softmax(1))["status"] == "flag"
    assert selfcheck.check_logits(torch.rand(8, 10))["status"] == "flag"  # sigmoid-like


# ------------------------------------------------------------------------------------ PGD vs APGD-CE agreement

def test_pgd_and_apgd_ce_agree_on_small_trained_model():
    model, x, y = digits_mlp()
    r = evaluate(model, x, y, attacks=["pgd20", "apgd-ce"], eps=16 / 255, n=200, progress=False)
    pgd, apgd = r["attacks"]["pgd20"]["robust_accuracy"], r["attacks"]["apgd-ce"]["robust_accuracy"]
    noise = selfcheck.noise_tolerance(pgd, 200)
    assert 0.1 < pgd < r["clean"]["accuracy"], f"degenerate comparison: clean {r['clean']['accuracy']}, pgd {pgd}"
    assert apgd <= pgd + noise, f"APGD-CE {apgd} weaker than PGD-20 {pgd} by more than noise {noise}"
    assert abs(apgd - pgd) <= 0.05, f"APGD-CE {apgd} and PGD-20 {pgd} should agree within 0.05 on this model"


# ------------------------------------------------------------------------------------------------- resumable

def _strip(r):
    r = json.loads(json.dumps(r))
    r.pop("wall_time_s")
    for a in r["attacks"].values():
        a.pop("attack_seconds"), a.pop("batches_resumed")
    return r


def test_resumed_evaluation_is_identical(tmp_path):
    model = linear_model(scale=1.0)
    x, y = data(40, model=model)
    kw = dict(attacks=["fgsm", "pgd10", "apgd-ce"], eps=6 / 255, batch_size=10, progress=False, aa_options=AA_FAST)
    full = evaluate(model, x, y, **kw)
    first = evaluate(model, x, y, state_dir=tmp_path, **kw)
    # simulate an interrupted run: drop some batches of some attacks
    for p in [tmp_path / "pgd10" / "batch_00001.json", tmp_path / "apgd-ce" / "batch_00003.json",
              tmp_path / "apgd-ce" / "batch_00000.json"]:
        p.unlink()
    resumed = evaluate(model, x, y, state_dir=tmp_path, **kw)
    assert resumed["attacks"]["pgd10"]["batches_resumed"] == 3 and resumed["attacks"]["fgsm"]["batches_resumed"] == 4
    assert _strip(full) == _strip(first) == _strip(resumed)
    with pytest.raises(ValueError, match="different evaluation.*eps"):
        evaluate(model, x, y, state_dir=tmp_path, **{**kw, "eps": 4 / 255})


# ------------------------------------------------------------------------------------------------- bad input

def test_bad_input_messages():
    model = linear_model()
    x, y = data(8)
    with pytest.raises(ValueError, match="valid: fgsm"):
        evaluate(model, x, y, attacks=["pgd-fast"], progress=False)
    with pytest.raises(ValueError, match="8/255"):
        evaluate(model, x, y, attacks=["fgsm"], eps=8, progress=False)
    with pytest.raises(ValueError, match="test set has 8"):
        evaluate(model, x, y, attacks=["fgsm"], n=9, progress=False)
    with pytest.raises(ValueError, match="do not match"):
        evaluate(linear_model(k=5), x, y.clamp_min(7), attacks=["fgsm"], progress=False)
    assert evaluate(model, x, y, attacks=["fgsm"], eps="8/255", progress=False)["config"]["eps_255"] == \
        pytest.approx(8)


# ------------------------------------------------------------------------------------------------------- CLI

def test_cli_writes_json(tmp_path, monkeypatch, capsys):
    model = linear_model()
    x, y = data(12, model=model)
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"stub checkpoint bytes")
    monkeypatch.setitem(sys.modules, "mixacm.train", types.SimpleNamespace(load_checkpoint_model=lambda p: model))
    monkeypatch.setitem(sys.modules, "mixacm.data", types.SimpleNamespace(is_streamed=lambda name, root=None: False,
                                                                          load_split=lambda name, split, root=None:
                                                                          (x, y)))
    out = tmp_path / "res.json"
    assert main([str(ckpt), "--data", "toy", "--attacks", "fgsm,pgd-5", "--eps", "8/255", "--n", "10",
                 "--no-progress", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["n_eval"] == 10 and set(res["attacks"]) == {"fgsm", "pgd5"}
    assert len(res["checkpoint"]["sha256"]) == 64 and res["seed"] == 0 and "machine" in res and "git_commit" in res
    assert main([str(ckpt), "--data", "toy", "--attacks", "fgsm,bogus"]) == 2
    assert "valid:" in capsys.readouterr().err
    assert main([str(ckpt), "--data", "toy", "--eps", "8"]) == 2
    assert main([str(ckpt), "--data", "toy", "--n", "13", "--no-progress"]) == 2
    assert "test set has 12" in capsys.readouterr().err


def test_cli_accepts_a_run_dir_and_hashes_its_checkpoint(tmp_path, monkeypatch):
    model = linear_model()
    x, y = data(12, model=model)
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"stub checkpoint bytes")
    monkeypatch.setitem(sys.modules, "mixacm.train", types.SimpleNamespace(load_checkpoint_model=lambda p: model))
    monkeypatch.setitem(sys.modules, "mixacm.data", types.SimpleNamespace(is_streamed=lambda name, root=None: False,
                                                                          load_split=lambda name, split, root=None:
                                                                          (x, y)))
    out = tmp_path / "res.json"
    assert main([str(run), "--data", "toy", "--attacks", "fgsm", "--n", "8", "--no-progress", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    import hashlib
    assert res["checkpoint"]["file"].endswith("best.pt")
    assert res["checkpoint"]["sha256"] == hashlib.sha256(b"stub checkpoint bytes").hexdigest()


class _Threshold(nn.Module):
    """Two classes on 1-pixel images: class 0 iff the pixel > 0.5 (logits scaled so they are not probabilities)."""

    def forward(self, x):
        v = x.flatten(1)[:, :1] - 0.5
        return torch.cat([10 * v, -10 * v], dim=1)


def test_worst_case_is_per_sample_when_attacks_break_different_points(monkeypatch):
    """Attack A breaks the even points, attack B the odd ones: each alone leaves 50 %, the per-sample worst case 0 %.
    Catches a worst case computed as the mean or the min of the per-attack accuracies."""
    import mixacm.evaluate as E

    x = torch.full((8, 1, 1, 1), 0.51)
    y = torch.zeros(8, dtype=torch.long)
    pos = torch.arange(8)

    def fake_attack(spec, model, xs, ys, *, eps, seed, device, aa_options):
        parity = 0 if spec.name == "fgsm" else 1
        # each call sees a batch of points still to attack; the fixture uses one batch of all 8
        hit = (pos[: len(xs)] % 2 == parity).view(-1, 1, 1, 1)
        return torch.where(hit, xs - 0.02, xs), []

    monkeypatch.setattr(E, "_attack_batch", fake_attack)
    res = evaluate(_Threshold(), x, y, attacks=["fgsm", "pgd20"], eps=0.03, progress=False)
    assert res["clean"]["accuracy"] == 1.0
    assert res["attacks"]["fgsm"]["robust_accuracy"] == 0.5 and res["attacks"]["pgd20"]["robust_accuracy"] == 0.5
    assert res["worst_case"]["robust_accuracy"] == 0.0
    assert res["worst_case"]["robust_mask"] == [0] * 8


def test_normalisation_advice_for_a_near_chance_model_points_at_training():
    """A collapsed model (chance on [0,1] inputs) that happens to score on standardised inputs gets advice to check
    its training, not to wrap it in a normalisation; a model that works on neither-but-standardised gets the wrap."""
    from mixacm import selfcheck

    y = torch.arange(40) % 10
    x = torch.rand(40, 3, 4, 4)

    class Oracle(torch.nn.Module):
        def __init__(self, raw_right: int):
            super().__init__()
            self.raw_right = raw_right

        def forward(self, inp):
            labels = y.clone()
            if inp.min() >= 0:  # [0,1] inputs: right only on the first raw_right images, else class 9 - y
                labels[self.raw_right:] = 9 - y[self.raw_right:]
            return torch.nn.functional.one_hot(labels, 10).float()

    near = selfcheck.check_expects_normalised(Oracle(0), x, y)
    assert near["status"] == "flag" and "near chance" in near["detail"] and "check its training" in near["detail"]
    half = selfcheck.check_expects_normalised(Oracle(20), x, y)
    assert half["status"] == "flag" and "wrap it" in half["detail"] and "near chance" not in half["detail"]
