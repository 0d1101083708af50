"""One definition per contract: each test fails when a second copy appears or a copy drifts from the owner.

    normalisation statistics   mixacm.normalization.STATS (data, models, teachers and checkpoints read it)
    config choice lists        the owning module's names (data, losses, models.common; config's own PRESETS)
    eps / radius parsing       mixacm.attacks.parse_eps (mixacm.config.parse_eps names the field, raises ConfigError)
    loss-term weights          mixacm.methods.objective_weights (the step's loss and term_weights)
    acm_loss reduction         the trainer always passes its config's value (the pure function keeps the formula's)
    alpha_acm_reference        mixacm.steps.acm_reference_channels
    CIFAR-10 JPEG root         mixacm.paths.resolve_cifar10_jpeg_root
    cpu-tier configs           verification.plans.cpu_plan only (no configs/cpu/)
    words in mixacm/           no issue numbers, no "provisional"
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

from mixacm import attacks, config, data, losses, normalization, paths, steps
from mixacm.config import CHOICES, PRESETS, ConfigError, TrainConfig
from mixacm.models import build_model, common

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "mixacm"
SOURCES = sorted(PKG.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _numbers(node: ast.AST) -> tuple[float, ...] | None:
    """The numbers of a tuple/list literal of numeric constants (e.g. ``(0.4914, 0.4822, 0.4465)``), else None."""
    if not isinstance(node, (ast.Tuple, ast.List)) or not node.elts:
        return None
    out = []
    for e in node.elts:
        if not (isinstance(e, ast.Constant) and isinstance(e.value, (int, float)) and not isinstance(e.value, bool)):
            return None
        out.append(float(e.value))
    return tuple(out)


def _enclosing_functions(tree: ast.Module) -> dict[ast.AST, str]:
    """node -> name of the innermost function around it ("<module>" outside any)."""
    where: dict[ast.AST, str] = {}

    def walk(node: ast.AST, fn: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else fn
            where[child] = name
            walk(child, name)

    walk(tree, "<module>")
    return where


# ------------------------------------------------------------------------------ 1. normalisation statistics
def test_no_second_table_of_dataset_statistics_in_the_library():
    """No literal of a data set's mean or std, and no MEAN/STD/STATS-named literal table, outside the one table."""
    owner = PKG / "normalization.py"
    values = {tuple(float(v) for v in vec) for mean, std in normalization.STATS.values() for vec in (mean, std)}
    bad = []
    for path in SOURCES:
        if path == owner:
            continue
        for node in ast.walk(_tree(path)):
            nums = _numbers(node)
            if nums is not None and nums in values:
                bad.append(f"{_rel(path)}:{node.lineno}: literal {nums} is a data set's statistics")
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                literal = isinstance(node.value, (ast.Tuple, ast.List, ast.Dict)) and any(
                    isinstance(c, ast.Constant) and isinstance(c.value, float) for c in ast.walk(node.value))
                if literal and any(re.search(r"MEAN|STD|STATS", n, re.I) for n in names):
                    bad.append(f"{_rel(path)}:{node.lineno}: {names} is a literal statistics table")
    assert not bad, "statistics belong in mixacm/normalization.py:\n" + "\n".join(bad)


def test_every_reader_of_the_statistics_gets_the_one_table():
    for name, stats in normalization.STATS.items():
        assert data.dataset_stats(name) == stats
    assert data.dataset_stats("imagefolder:/any") == normalization.STATS["cifar10"]
    assert (common.CIFAR10_MEAN, common.CIFAR10_STD) == normalization.STATS["cifar10"]
    assert (common.CIFAR100_MEAN, common.CIFAR100_STD) == normalization.STATS["cifar100"]
    assert (common.IMAGENET_MEAN, common.IMAGENET_STD) == normalization.STATS["imagenet"]
    assert common.default_stats(3) == normalization.STATS["cifar10"]
    # a model built without statistics for non-RGB input is neutral, not some data set's
    assert common.default_stats(1) == ((normalization.NEUTRAL,), (normalization.NEUTRAL,))


def _buffers(model) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return tuple(model.mean.flatten().tolist()), tuple(model.std.flatten().tolist())


def _close(a, b) -> bool:
    return all(len(x) == len(y) and all(abs(u - v) < 1e-6 for u, v in zip(x, y)) for x, y in zip(a, b))


@pytest.mark.parametrize("model", ["smallcnn", "wrn-10-1", "gowal-wrn-10-1"])
def test_a_digits_model_uses_the_digits_statistics_when_built_and_when_reloaded(model):
    """The trainer's student and the model rebuilt from its checkpoint normalise with data's digits statistics
    (gowal-wrn-* keeps them out of its state dict, so the rebuild itself must pass them)."""
    from mixacm.teachers import load_package_model
    from mixacm.train import _build_student, _load_data
    cfg = TrainConfig(dataset="digits", model=model, batch_size=16, progress=False)
    student = _build_student(cfg, _load_data(cfg))
    assert _close(_buffers(student), data.dataset_stats("digits"))
    payload = {"model": model, "num_classes": 10, "in_channels": 1, "feature_point": "pre",
               "model_state": student.state_dict(), "config": config.to_dict(cfg)}
    assert _close(_buffers(load_package_model(payload)), data.dataset_stats("digits"))


def test_rebuilt_rgb_checkpoints_use_their_data_sets_statistics():
    m = build_model("gowal-wrn-10-1", num_classes=100, **normalization.model_stats("cifar100", 3))
    from mixacm.teachers import load_package_model
    payload = {"model": "gowal-wrn-10-1", "num_classes": 100, "in_channels": 3, "model_state": m.state_dict(),
               "config": {"dataset": "cifar100"}}
    assert _close(_buffers(load_package_model(payload)), normalization.STATS["cifar100"])
    assert normalization.model_stats("digits", 3) == {}  # channel counts must agree
    assert normalization.model_stats("no-such-set", 1) == {} and normalization.model_stats(None, 3) == {}


# ------------------------------------------------------------------------------ 2. choice lists of the config
OWNED_CHOICES = {
    "augment": data.AUGMENTS,
    "transform": losses.TRANSFORMS,
    "acm_reduction": losses.REDUCTIONS,
    "mapping": losses.MAPPINGS,
    "feature_point": common.FEATURE_POINTS,
    "preset": tuple(PRESETS),
}


@pytest.mark.parametrize("key", sorted(OWNED_CHOICES))
def test_config_choices_are_the_owners_names(key):
    assert tuple(CHOICES[key]) == tuple(OWNED_CHOICES[key])
    for value in OWNED_CHOICES[key]:  # every name the owner accepts is a valid config value
        assert getattr(TrainConfig(**{key: value}), key) == value


def test_config_spells_out_no_owned_name_list():
    """config.py holds no string-tuple literal repeating an owner's list (it reads the owner's instead)."""
    owned = {frozenset(v) for v in OWNED_CHOICES.values()}
    bad = []
    for node in ast.walk(_tree(PKG / "config.py")):
        if isinstance(node, (ast.Tuple, ast.List)) and node.elts and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            names = frozenset(e.value for e in node.elts)
            if names in owned:
                bad.append(f"config.py:{node.lineno}: {sorted(names)}")
    assert not bad, bad


# ------------------------------------------------------------------------------ 3. eps parsing
BOUNDARY = [0, 0.0, "0", 0.5, "254/255", 1 - 1e-9, 1, 1.0, "1", "1.0", "1/1", "255/255", 1 + 1e-9, 8, "8",
            -1e-9, "-1/255", float("nan"), float("inf"), "eight", "1/0", True]


def _outcome(fn, value):
    try:
        return ("ok", fn(value))
    except ValueError as e:
        return ("error", str(e))


@pytest.mark.parametrize("value", BOUNDARY, ids=repr)
def test_eps_is_parsed_identically_by_config_and_attacks(value):
    via_attacks = _outcome(attacks.parse_eps, value)
    via_config = _outcome(lambda v: config.parse_eps("eps", v), value)
    via_field = _outcome(lambda v: TrainConfig(eps=v).eps, value)
    assert via_attacks == via_config == via_field


def test_the_radius_boundary_is_one():
    assert attacks.parse_eps(1 - 1e-9) == 1 - 1e-9 and attacks.parse_eps("254/255") == 254 / 255
    for one in (1, 1.0, "1", "255/255"):
        with pytest.raises(ValueError, match=r"did you mean 1/255\?"):
            attacks.parse_eps(one)
        with pytest.raises(ConfigError, match=r"did you mean 1/255\?"):
            TrainConfig(attack_step=one)


def test_one_radius_rule_in_the_library():
    """Only attacks.parse_eps compares a radius with 1; config delegates to it."""
    bad = []
    for path in SOURCES:
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Compare) and any(
                    isinstance(c, ast.Constant) and c.value == 1 for c in node.comparators) and any(
                    isinstance(op, (ast.Gt, ast.GtE)) for op in node.ops):
                left = ast.unparse(node.left)
                if re.search(r"\b(eps|value|out|radius)\b", left) and _rel(path) != "mixacm/attacks.py":
                    bad.append(f"{_rel(path)}:{node.lineno}: {ast.unparse(node)}")
    assert not bad, bad


# ------------------------------------------------------------------------------ 4. loss-term weights
SWITCHES = [dict(), dict(use_kd=False), dict(use_mixup=False), dict(use_kd=False, use_mixup=False),
            dict(use_acm=False, use_mixup=False), dict(use_ce=False, use_kd=False), dict(feature_loss="direct")]


@pytest.mark.parametrize("switches", SWITCHES, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()) or "paper")
def test_the_step_loss_is_the_reported_weights_times_the_terms(switches):
    from mixacm.methods import mixacm_step, term_weights
    from mixacm.steps import StepContext, WithFeatures
    from mixacm.teachers import FrozenTeacher
    torch.manual_seed(0)
    cfg = TrainConfig(method="mixacm", model="smallcnn", alpha_acm=50.0, **switches)
    student = build_model("smallcnn", num_classes=10, in_channels=1)
    teacher = FrozenTeacher(build_model("smallcnn", num_classes=10, in_channels=1))
    ctx = StepContext(cfg=cfg, student=WithFeatures(student), student_module=student, teacher=teacher,
                      generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(8, 1, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)
    out = mixacm_step(ctx, x, y)
    w = term_weights(cfg)
    assert set(w) == set(out.terms)
    torch.testing.assert_close(out.loss.detach(), sum(w[k] * out.terms[k] for k in ("mix", "kld", cfg.feature_loss)))


def test_loss_weights_are_computed_in_one_function():
    """The expression (1 - alpha_kld) appears once in methods.py: in objective_weights."""
    src = (PKG / "methods.py").read_text()
    tree = _tree(PKG / "methods.py")
    where = _enclosing_functions(tree)
    hits = [where[n] for n in ast.walk(tree) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub)
            and isinstance(n.left, ast.Constant) and n.left.value == 1.0 and "kld" in ast.unparse(n.right)]
    assert hits == ["objective_weights"], hits
    assert src.count("alpha_kld if") == 1


# ------------------------------------------------------------------------------ 5. acm_loss reduction
def test_every_library_call_of_acm_loss_passes_the_reduction():
    """acm_loss keeps the formula's "sum" as its own default; the trainer's is TrainConfig.acm_reduction ("mean"),
    so every call inside the library states it."""
    bad = []
    for path in SOURCES:
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] == "acm_loss" and not any(
                    k.arg == "reduction" for k in node.keywords):
                bad.append(f"{_rel(path)}:{node.lineno}: {ast.unparse(node)[:80]}")
    assert not bad, bad
    assert TrainConfig().acm_reduction == "mean" and TrainConfig().acm_reduction in losses.REDUCTIONS


def test_the_trainers_feature_term_uses_the_configs_reduction():
    g = torch.Generator().manual_seed(0)
    ft = [torch.rand(2, c, 4, 4, generator=g) for c in (16, 16, 32, 64)]
    fs = [torch.rand(2, c, 4, 4, generator=g) for c in (16, 16, 32, 64)]
    for reduction in losses.REDUCTIONS:
        cfg = TrainConfig(method="mixacm", acm_reduction=reduction)
        torch.testing.assert_close(steps.feature_term(cfg, ft, fs), losses.acm_loss(ft, fs, reduction=reduction))


# ------------------------------------------------------------------------------ 6. alpha_acm_reference
def test_alpha_acm_reference_is_resolved_in_one_function():
    """Read only by steps.acm_reference_channels (its resolution) and config.check (its value rule)."""
    reads = set()
    for path in SOURCES:
        tree = _tree(path)
        where = _enclosing_functions(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "alpha_acm_reference" and isinstance(node.ctx, ast.Load):
                reads.add((_rel(path), where[node]))
    assert reads == {("mixacm/steps.py", "acm_reference_channels"), ("mixacm/config.py", "check")}, reads


def test_acm_reference_channels_is_what_the_loss_and_the_check_use():
    from mixacm.models import feature_channels_of
    from mixacm.train import check_names
    cfg = TrainConfig(method="mixacm", model="wrn-16-1", alpha_acm_reference="wrn-34-10")
    assert steps.acm_reference_channels(cfg) == feature_channels_of("wrn-34-10") == (16, 160, 320, 640)
    assert steps.acm_reference_channels(TrainConfig()) is None
    check_names(cfg)
    bad = TrainConfig(method="mixacm", model="wrn-16-1", alpha_acm_reference="resnet50")
    with pytest.raises(ConfigError, match="resnet50 has 5 feature blocks, the student wrn-16-1 has 4"):
        steps.acm_reference_channels(bad, 4)
    with pytest.raises(ConfigError, match="resnet50 has 5 feature blocks, the student wrn-16-1 has 4"):
        check_names(bad)


# ------------------------------------------------------------------------------ 7. CIFAR-10 JPEG root
def test_the_cifar10_jpeg_root_has_one_resolver():
    assert data.resolve_cifar10_jpeg_root is paths.resolve_cifar10_jpeg_root
    bad = []
    for path in SOURCES:
        if path == PKG / "paths.py":
            continue
        text = path.read_text()
        for pattern in (r"environ[^\n]*MIXACM_CIFAR10_JPEG", r"\"shared\"\s*/\s*\"data\"", r"/\s*\"cifar10-jpeg\""):
            for m in re.finditer(pattern, text, re.M):
                bad.append(f"{_rel(path)}:{text[:m.start()].count(chr(10)) + 1}: {m.group(0)!r}")
    assert not bad, "the CIFAR-10 JPEG copy is located by mixacm.paths only:\n" + "\n".join(bad)


def test_recorded_paths_and_the_resolver_agree_on_the_default(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.CIFAR10_JPEG_ENV, raising=False)
    default = paths.default_cifar10_jpeg_candidates()[0]
    assert paths.portable(str(default / "train" / "x.jpg")) == "${MIXACM_CIFAR10_JPEG}/train/x.jpg"
    (tmp_path / "train").mkdir()
    monkeypatch.setenv(paths.CIFAR10_JPEG_ENV, str(tmp_path))
    assert data.split_dir("cifar10-jpeg", "train") == tmp_path / "train"
    monkeypatch.setenv(paths.CIFAR10_JPEG_ENV, str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="MIXACM_CIFAR10_JPEG"):
        data.split_dir("cifar10-jpeg", "test")


# ------------------------------------------------------------------------------ 8. cpu-tier configs
def test_the_cpu_tier_is_defined_by_its_plan_only():
    """The cpu tier's runs are verification.plans.cpu_plan; a configs/cpu/ copy drifted from it (a WRN-16-4 teacher
    for 20 epochs that nothing read), so none is shipped."""
    assert not (ROOT / "configs" / "cpu").exists()


# ------------------------------------------------------------------------------ 9. words in mixacm/
def test_no_issue_numbers_or_provisional_words_in_the_library():
    bad = []
    for path in SOURCES:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"[Ii]ssues? #?\d+|\bprovisional\b", line):
                bad.append(f"{_rel(path)}:{i}: {line.strip()}")
    assert not bad, bad
