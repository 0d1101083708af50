"""Step functions: every method trains end to end; ablation switches change which loss terms are non-zero;
the teacher is frozen by construction; KD refuses teacher/student class-count mismatches."""
from __future__ import annotations

import json
import math

import pytest
import torch

from mixacm import losses as L
from mixacm.config import ConfigError, load_config
from mixacm.methods import METHODS
from mixacm.models import build_model
from mixacm.steps import StepContext, WithFeatures
from mixacm.teachers import FrozenTeacher
from mixacm.train import train

TINY = dict(dataset="digits", model="smallcnn", augment="none", data_fraction=0.25, val_fraction=0.2, batch_size=32,
            epochs=1, max_steps_per_epoch=3, val_n=40, progress=False, eval_batch_size=128, lr=0.05, eps=0.1,
            attack_step=0.05, attack_steps=2, teacher_expected_acc=0.0)


def tiny(**kw):
    return load_config(None, {**TINY, **kw})


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("teacher")
    return train(tiny(method="natural", epochs=2, max_steps_per_epoch=5), run)["checkpoint"]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_end_to_end(method, teacher_ckpt, tmp_path):
    s = train(tiny(method=method, epochs=2, teacher=teacher_ckpt), tmp_path / method)
    assert s["status"] == "completed" and s["epochs"] == 2
    lines = [json.loads(x) for x in open(s["metrics"])]
    assert [r["epoch"] for r in lines] == [1, 2]
    for r in lines:
        assert all(math.isfinite(v) for v in r["terms"].values()) and math.isfinite(r["loss"])
    expected_terms = {"natural": {"ce"}, "pgd_at": {"ce"}, "fast_at": {"ce"}, "ard": {"ce", "kld"},
                      "kd": {"mix", "kld", "acm"}, "mixacm": {"mix", "kld", "acm"}, "trades": {"ce", "kl"},
                      "mart": {"bce", "kl"}, "awp": {"ce", "kl"}, "fat": {"ce", "kl"}, "free_at": {"ce"}}[method]
    assert set(lines[0]["terms"]) == expected_terms
    if method in ("mixacm",):
        assert lines[0]["terms"]["acm"] > 0 and lines[0]["terms"]["kld"] > 0
    if method == "kd":
        assert lines[0]["terms"]["acm"] == 0 and lines[0]["terms"]["kld"] > 0


def _ctx(cfg, teacher_model=None, seed=0):
    torch.manual_seed(seed)
    student = build_model(cfg.model, num_classes=10, in_channels=1)
    teacher = FrozenTeacher(teacher_model or build_model("smallcnn", num_classes=10, in_channels=1))
    from mixacm.train import _distill_modules
    d = _distill_modules(cfg, teacher, student)
    return StepContext(cfg=cfg, student=WithFeatures(student), student_module=student, teacher=teacher,
                       generator=torch.Generator().manual_seed(seed), affine=d["affine"] if "affine" in d else None,
                       adapters=d["adapters"] if "adapters" in d else None)


def _batch(n=16):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


# switches -> terms that must be non-zero / exactly zero (Table 6 columns + Table 8 direct)
ABLATIONS = [
    ({}, {"mix", "kld", "acm"}, set()),                                              # standard setting
    ({"use_kd": False}, {"mix", "acm"}, {"kld"}),                                    # w/o KD
    ({"use_mixup": False}, {"mix", "kld", "acm"}, set()),                            # w/o mixup
    ({"use_kd": False, "use_mixup": False}, {"mix", "acm"}, {"kld"}),                 # only ACM
    ({"use_acm": False, "use_mixup": False}, {"mix", "kld"}, {"acm"}),                # only KD
    ({"use_ce": False, "use_kd": False}, {"acm"}, {"mix", "kld"}),                    # ACM term alone
    ({"feature_loss": "direct"}, {"mix", "kld", "direct"}, set()),                   # Table 8 direct L2
]


@pytest.mark.parametrize("switches,nonzero,zero", ABLATIONS)
def test_ablation_switches_select_loss_terms(switches, nonzero, zero, monkeypatch):
    import mixacm.mixup as M
    alphas = []
    real = M.mix_batch
    monkeypatch.setattr(M, "mix_batch", lambda x, y, a, generator=None: (alphas.append(a), real(x, y, a, generator))[1])
    cfg = tiny(method="mixacm", **switches)
    ctx = _ctx(cfg)
    x, y = _batch()
    res = METHODS["mixacm"](ctx, x, y)
    for k in nonzero:
        assert float(res.terms[k]) > 0, (k, res.terms)
    for k in zero:
        assert float(res.terms[k]) == 0.0, (k, res.terms)
    assert alphas == [cfg.mixup_alpha if cfg.use_mixup else 0.0]
    # the objective is the documented weighted sum (Sec. 5.4)
    w_kld = cfg.alpha_kld if cfg.use_kd else 0.0
    w_mix = (1 - w_kld) if cfg.use_ce else 0.0
    feat = res.terms.get("acm", res.terms.get("direct"))
    want = w_mix * res.terms["mix"] + w_kld * res.terms["kld"] + cfg.alpha_acm * feat
    assert torch.allclose(res.loss.detach(), want, rtol=1e-5), (float(res.loss), float(want))


def test_block_subset_uses_only_those_blocks():
    x, y = _batch()
    for blocks in ([1], [3], [2, 3, 4]):
        cfg = tiny(method="mixacm", blocks=blocks, use_mixup=False)
        ctx = _ctx(cfg)
        res = METHODS["mixacm"](ctx, x, y)
        with torch.no_grad():
            _, ft = ctx.teacher.forward_intermediates(x)
        ctx2 = _ctx(cfg)  # same seed -> same student weights; recompute features in a fresh copy
        _, fs = ctx2.student_module.forward_intermediates(x)
        want = L.acm_loss(ft, fs, blocks=blocks, transform=cfg.transform, reduction=cfg.acm_reduction)
        assert torch.allclose(res.terms["acm"], want.detach(), rtol=1e-5), (blocks, res.terms["acm"], want)


@pytest.mark.parametrize("transform", ["teacher_maxpool", "teacher_avgpool", "student_maxpool", "student_avgpool",
                                       "teacher_affine", "student_affine"])
def test_transforms_handle_channel_mismatch(transform):
    cfg = tiny(method="mixacm", transform=transform)
    wide = build_model("wrn-10-1", num_classes=10, in_channels=1)  # channels (16, 16, 32, 64) vs (8, 8, 16, 32)
    ctx = _ctx(cfg, teacher_model=wide)
    res = METHODS["mixacm"](ctx, *_batch())
    assert float(res.terms["acm"]) > 0
    res.loss.backward()
    if transform.endswith("affine"):
        assert ctx.affine is not None and all(p.grad is not None for p in ctx.affine.parameters())
    else:
        assert ctx.affine is None
    with pytest.raises(ValueError):
        METHODS["mixacm"](_ctx(tiny(method="mixacm", transform="none"), teacher_model=wide), *_batch())


def test_teacher_is_frozen_by_construction(teacher_ckpt, tmp_path, monkeypatch):
    """Params unchanged, BN running stats unchanged, no grads, eval mode even after .train()."""
    from mixacm import teachers as T
    seen = {}
    real = T.FrozenTeacher.__init__

    def spy(self, model, **kw):
        real(self, model, **kw)
        seen["t"] = self
        seen["before"] = {k: v.clone() for k, v in model.state_dict().items()}

    monkeypatch.setattr(T.FrozenTeacher, "__init__", spy)
    import mixacm.train as TR
    monkeypatch.setattr(TR, "FrozenTeacher", T.FrozenTeacher)
    train(tiny(method="mixacm", epochs=1, teacher=teacher_ckpt), tmp_path / "run")
    t = seen["t"]
    after = t.model.state_dict()
    assert any("running_mean" in k for k in after)
    for k, v in seen["before"].items():
        assert torch.equal(v, after[k]), f"teacher tensor {k} changed during training"
    assert not t.training and not any(m.training for m in t.modules())
    t.train()
    assert not any(m.training for m in t.modules()), "train() must not unfreeze the teacher"
    assert all(not p.requires_grad and p.grad is None for p in t.parameters())
    x, _ = _batch()
    logits, feats = t.forward_intermediates(x)
    assert logits.grad_fn is None and all(f.grad_fn is None for f in feats)


def test_class_count_mismatch_with_kd_is_refused(tmp_path):
    five = build_model("smallcnn", num_classes=5, in_channels=1)
    path = tmp_path / "five.pt"
    torch.save(five.state_dict(), path)
    base = dict(method="mixacm", teacher=str(path), teacher_model="smallcnn", teacher_num_classes=5)
    with pytest.raises(ConfigError, match="5 classes.*use_kd=false"):
        train(tiny(**base), tmp_path / "a")
    # Table 5 transfer setting: KD off, ACM only on features -> trains, gate skipped (different label sets)
    s = train(tiny(**base, use_kd=False), tmp_path / "b")
    assert s["teacher"]["gate_acc"] is None and "skipped" in s["teacher"]["gate"]
    with pytest.raises(ConfigError, match="5 classes"):
        train(tiny(method="kd", teacher=str(path), teacher_model="smallcnn", teacher_num_classes=5), tmp_path / "c")
