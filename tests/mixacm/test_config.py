"""TrainConfig: paper defaults, presets, file parsing, --set overrides and their one-line errors."""
from __future__ import annotations

import json

import pytest

from mixacm.config import ConfigError, TrainConfig, imagenet_preset, load_config, parse_eps, parse_set


def test_defaults_are_the_papers_cifar_settings():
    c = TrainConfig()
    # Sec. 6 "Training Details" / Supp. A.1 "Optimizer Setting"
    assert (c.lr, c.momentum, c.nesterov, c.weight_decay, c.batch_size, c.epochs, c.schedule) == \
        (0.1, 0.9, True, 5e-4, 128, 200, "cosine")
    assert (c.alpha_acm, c.temperature, c.alpha_kld, c.mixup_alpha) == (5000.0, 10.0, 0.95, 1.0)
    assert c.eps == pytest.approx(8 / 255) and c.attack_step == pytest.approx(2 / 255) and c.attack_steps == 7
    assert c.model == "wrn-34-10" and c.transform == "teacher_maxpool" and c.mapping == "max"


def test_imagenet_preset_follows_supp_a1():
    c = imagenet_preset()
    assert (c.lr, c.batch_size, c.epochs, c.weight_decay, c.warmup_epochs, c.warmup_start_lr, c.mixup_alpha) == \
        (0.8, 2048, 120, 5e-5, 5.0, 0.16, 0.2)
    assert load_config(None, {"preset": "imagenet"}).lr == 0.8


@pytest.mark.parametrize("text,value", [("8/255", 8 / 255), ("0.0314", 0.0314), (0.0314, 0.0314), ("2/255", 2 / 255)])
def test_eps_accepts_fraction_and_float(text, value):
    assert parse_eps("eps", text) == pytest.approx(value)
    assert load_config(None, [f"eps={text}"]).eps == pytest.approx(value)


@pytest.mark.parametrize("bad", ["8", 8, "16", 1.0])
def test_eps_of_one_or_more_is_rejected_with_the_fix(bad):
    with pytest.raises(ConfigError, match=r"did you mean .*/255\?"):
        load_config(None, {"eps": bad})


def test_unknown_key_lists_valid_keys_in_one_line():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["learning_rate=0.1"])
    msg = str(e.value)
    assert "learning_rate" in msg and "valid keys" in msg and "alpha_acm" in msg and "\n" not in msg


@pytest.mark.parametrize("item,match", [("epochs=1.5", "integer"), ("use_kd=maybe", "true or false"),
                                        ("lr=fast", "number"), ("blocks=x", "integer"), ("epochs=true", "integer")])
def test_wrong_types_are_rejected(item, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, [item])


def test_set_values_parse_as_toml():
    assert parse_set(["blocks=[2,3]", "use_kd=false", "teacher=foo.pt", "lr=0.05"]) == \
        {"blocks": [2, 3], "use_kd": False, "teacher": "foo.pt", "lr": 0.05}
    c = load_config(None, ["blocks=2,3,4", "teacher_model=none"])
    assert c.blocks == [2, 3, 4] and c.teacher_model is None


def test_bad_choices_name_the_valid_ones():
    with pytest.raises(ConfigError, match="teacher_maxpool"):
        load_config(None, {"transform": "maxpool"})
    with pytest.raises(ConfigError, match="1-based"):
        load_config(None, {"blocks": [0, 1]})
    with pytest.raises(ConfigError, match="conv_fc_weights"):
        load_config(None, {"weight_decay_on": "weights"})
    with pytest.raises(ConfigError, match="lr_lead_steps"):
        load_config(None, {"lr_lead_steps": -1})


def test_toml_tables_base_chain_and_json(tmp_path):
    (tmp_path / "base.toml").write_text('method = "natural"\nepochs = 3\n[optim]\nlr = 0.2\n')
    (tmp_path / "child.toml").write_text('base = "base.toml"\nepochs = 5\nteacher = "config:t.toml"\n')
    c = load_config(tmp_path / "child.toml", ["seed=3"])
    assert (c.method, c.epochs, c.lr, c.seed) == ("natural", 5, 0.2, 3)
    assert c.teacher == "config:" + str((tmp_path / "t.toml").resolve())  # file-relative teacher config
    (tmp_path / "c.json").write_text(json.dumps({"eps": "4/255", "model": "smallcnn"}))
    assert load_config(tmp_path / "c.json").eps == pytest.approx(4 / 255)


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("epochs = = 3")
    with pytest.raises(ConfigError, match="does not parse"):
        load_config(tmp_path / "bad.toml")


def test_every_shipped_config_parses():
    from pathlib import Path
    root = Path(__file__).resolve().parents[2] / "configs"
    files = sorted(root.rglob("*.toml"))
    assert files, "no configs shipped"
    for f in files:
        load_config(f)  # raises on unknown keys / wrong types


def test_a_config_built_directly_coerces_and_validates_itself():
    # the gpu tier once built TrainConfig(**spec) with eps="8/255": the first PGD step raised TypeError
    c = TrainConfig(eps="8/255", attack_step="2/255", epochs="3", blocks="2,3", use_kd="false")
    assert c.eps == pytest.approx(8 / 255) and c.attack_step == pytest.approx(2 / 255)
    assert (c.epochs, c.blocks, c.use_kd) == (3, [2, 3], False)
    with pytest.raises(ConfigError, match="did you mean 8/255"):
        TrainConfig(eps=8)
    with pytest.raises(ConfigError, match="schedule='linear' is not valid"):
        TrainConfig(schedule="linear")
    c.lr = "0.05"  # assignment after construction is checked too
    assert c.lr == 0.05
    with pytest.raises(ConfigError, match="must be a number"):
        c.lr = "fast"


def test_alpha_acm_at_reference_widths_is_checked_where_the_config_is_built():
    from mixacm.config import ConfigError, TrainConfig
    from mixacm.train import check_names
    cfg = TrainConfig(method="mixacm", model="wrn-16-1", alpha_acm_reference="wrn-34-10")
    check_names(cfg)
    with pytest.raises(ConfigError, match="acm_reduction='mean'"):
        TrainConfig(method="mixacm", model="wrn-16-1", alpha_acm_reference="wrn-34-10", acm_reduction="sum")
    with pytest.raises(ConfigError, match="unknown model 'wrn-34'"):
        check_names(TrainConfig(method="mixacm", model="wrn-16-1", alpha_acm_reference="wrn-34"))
    with pytest.raises(ConfigError, match="resnet50 has 5 feature blocks, the student wrn-16-1 has 4"):
        check_names(TrainConfig(method="mixacm", model="wrn-16-1", alpha_acm_reference="resnet50"))


def test_feature_term_uses_the_reference_widths():
    """The trainer's feature term with alpha_acm_reference = the loss at the reference's channel counts."""
    import torch
    from mixacm.config import TrainConfig
    from mixacm.losses import acm_loss
    from mixacm.models import feature_channels_of
    from mixacm.steps import feature_term
    assert feature_channels_of("wrn-34-10") == (16, 160, 320, 640)
    g = torch.Generator().manual_seed(0)
    ft = [torch.rand(2, c, 4, 4, generator=g) for c in (32, 32, 64, 128)]
    fs = [torch.rand(2, c, 4, 4, generator=g) for c in (16, 16, 32, 64)]
    cfg = TrainConfig(method="mixacm", model="wrn-16-1", alpha_acm_reference="wrn-34-10")
    want = acm_loss(ft, fs, reduction="mean", reference_channels=(16, 160, 320, 640))
    assert torch.allclose(feature_term(cfg, ft, fs), want)
    # block 1 keeps its weight (16 = 16), blocks 2-4 weigh 10x less than with the literal alpha
    lit = [acm_loss([a], [b], reduction="mean") for a, b in zip(ft, fs)]
    assert torch.allclose(want, lit[0] + sum(x / 10 for x in lit[1:]))
