"""Attacks: eps-ball and [0,1] properties of every attack (incl. the AutoAttack parts), CW against the exact l-inf
robustness of a linear model, PGD monotone(-ish) in steps on a small trained model, name/eps parsing errors."""
from __future__ import annotations


import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mixacm.attacks import ATTACKS, PGD_STEP_SIZE, fgsm, parse_attack, parse_eps, pgd_linf, pgd_restarts, run_white_box
from mixacm.autoattack_runner import run_autoattack

from _digits_mlp import trained_digits_mlp

TOL = 1e-6


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def linear_model(seed: int = 0, shape=(3, 4, 4), k: int = 10, scale: float = 3.0) -> nn.Module:
    torch.manual_seed(seed)
    lin = nn.Linear(int(torch.tensor(shape).prod()), k)
    with torch.no_grad():
        lin.weight.mul_(scale)
    return nn.Sequential(nn.Flatten(), lin).eval()


def tiny_cnn(seed: int = 0, k: int = 10) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, k)).eval()


def assert_valid(x, x_adv, eps, source):
    d = (x_adv - x).abs().max().item()
    assert not torch.isnan(x_adv).any(), f"{source}: NaN in adversarial input"
    assert d <= eps + TOL, f"{source}: expected l-inf <= {eps} + {TOL}, got {d}, excess {d - eps}"
    assert x_adv.min() >= 0 and x_adv.max() <= 1, f"{source}: range [{x_adv.min()}, {x_adv.max()}] outside [0,1]"


@settings(max_examples=15)
@given(seed=st.integers(0, 2**16), eps=st.floats(1e-3, 0.3), name=st.sampled_from(["fgsm", "pgd5", "cw20", "pgd3x2"]),
       edge=st.booleans())
def test_white_box_attacks_stay_in_ball_and_box(seed, eps, name, edge):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(6, 3, 4, 4, generator=g)
    if edge:  # pixels at the box boundary: projection onto the ball AND [0,1]
        x = (x > 0.5).float()
    model = linear_model(seed % 7)
    y = torch.randint(0, 10, (6,), generator=g)
    x_adv = run_white_box(parse_attack(name), model, x, y, eps=eps, generator=g)
    assert_valid(x, x_adv, eps, f"{name} eps={eps}")


@settings(max_examples=10)
@given(seed=st.integers(0, 2**16), eps=st.floats(1e-3, 0.2), loss=st.sampled_from(["ce", "cw", "kl"]))
def test_pgd_linf_signature_kept_for_trainer(seed, eps, loss):
    g = torch.Generator().manual_seed(seed)
    x, model = torch.rand(4, 3, 4, 4, generator=g), tiny_cnn()
    y = torch.randint(0, 10, (4,), generator=g)
    x_adv = pgd_linf(model, x, y, eps=eps, step_size=eps / 4, steps=3, random_start=True, loss=loss,
                     target_logits=model(x).detach() if loss == "kl" else None, generator=g)
    assert_valid(x, x_adv, eps, f"pgd_linf loss={loss}")
    assert_valid(x, fgsm(model, x, y, eps=eps, random_start=True, step_size=eps, generator=g), eps, "fgsm-rs")


@pytest.mark.parametrize("part", [(), ("apgd-ce",), ("apgd-dlr",), ("apgd-t",), ("fab",), ("fab-t",), ("square",)])
def test_autoattack_parts_stay_in_ball_and_box(part):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 3, 4, 4, generator=g)
    model = linear_model(1, scale=3.0)
    with torch.no_grad():
        y = model(x).argmax(1)  # all points start correct, so every attack really runs
    eps = 8 / 255
    res = run_autoattack(model, x, y, eps=eps, parts=part, seed=0, square_queries=300, n_iter=20)
    assert_valid(x, res.x_adv, eps, f"autoattack {part or 'standard'}")
    with torch.no_grad():
        pred = model(res.x_adv).argmax(1)
    assert torch.equal(pred, res.y_adv), "y_adv of the package must be the model's prediction on x_adv"
    assert (pred != y).any(), f"{part}: expected some points broken on a non-robust linear model"


def test_cw_matches_exact_linf_robustness_of_linear_model():
    """For z = Wx + b and x far from the box edges, x is l-inf robust at eps iff for all k != y:
    z_y - z_k > eps * ||w_y - w_k||_1. CW-PGD (margin loss) must find exactly the non-robust points."""
    model, eps = linear_model(3, scale=1.0), 8 / 255
    g = torch.Generator().manual_seed(0)
    x = 0.25 + 0.5 * torch.rand(200, 3, 4, 4, generator=g)  # eps-ball stays inside [0,1]
    lin = model[1]
    with torch.no_grad():
        z = model(x)
    y = z.argmax(1)
    w = lin.weight  # (K, D)
    gap = z.gather(1, y[:, None]) - z  # (N, K)
    l1 = (w[y][:, None, :] - w[None, :, :]).abs().sum(-1)  # (N, K)
    slack = gap - eps * l1
    slack.scatter_(1, y[:, None], float("inf"))
    exact_robust = slack.min(1).values > 0
    clear = slack.min(1).values.abs() > 1e-3  # skip points on the decision boundary
    x_adv = run_white_box(parse_attack("cw20"), model, x, y, eps=eps, generator=g)
    with torch.no_grad():
        cw_robust = model(x_adv).argmax(1) == y
    mism = (cw_robust != exact_robust) & clear
    assert 0 < exact_robust.sum() < len(x), "test needs both robust and non-robust points"
    assert mism.sum() == 0, (f"CW-20 vs exact: {int(mism.sum())} of {int(clear.sum())} points disagree "
                             f"(exact robust {int(exact_robust.sum())}, CW robust {int(cw_robust.sum())})")


def _trained_digits_mlp():
    model, x, y = trained_digits_mlp()
    return model, x[:150], y[:150]


def test_pgd_monotone_in_steps_on_trained_model():
    model, x, y = _trained_digits_mlp()
    eps, accs = 16 / 255, {}
    for k in (1, 5, 20, 50):
        g = torch.Generator().manual_seed(0)
        x_adv = pgd_restarts(model, x, y, eps=eps, step_size=PGD_STEP_SIZE, steps=k, generator=g)
        with torch.no_grad():
            accs[k] = (model(x_adv).argmax(1) == y).float().mean().item()
    noise = 2 / len(x)  # two points
    for a, b in [(1, 5), (5, 20), (20, 50)]:
        assert accs[b] <= accs[a] + noise, f"PGD-{b} {accs[b]} > PGD-{a} {accs[a]} + noise {noise} (all: {accs})"
    assert accs[50] < accs[1], f"more steps should help at all on this model: {accs}"


def test_restarts_never_weaker():
    model, x, y = _trained_digits_mlp()
    eps = 16 / 255
    one = pgd_restarts(model, x, y, eps=eps, steps=5, restarts=1, generator=torch.Generator().manual_seed(0))
    three = pgd_restarts(model, x, y, eps=eps, steps=5, restarts=3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        r1, r3 = (model(one).argmax(1) == y), (model(three).argmax(1) == y)
    # same generator -> restart 1 of both runs is identical, extra restarts can only break more points
    assert not (r3 & ~r1).any(), "a point robust to 1 restart was broken, but one broken by 1 restart is robust to 3"
    assert r3.sum() <= r1.sum()


def test_names_and_eps_parsing():
    assert parse_attack("pgd-20").name == "pgd20" and parse_attack("PGD20").steps == 20
    s = parse_attack("pgd10x3")
    assert (s.kind, s.steps, s.restarts) == ("pgd", 10, 3)
    assert parse_attack("cw-30").kind == "cw"
    assert set(ATTACKS) >= {"fgsm", "pgd5", "pgd10", "pgd20", "pgd50", "pgd100", "pgd500", "cw20", "apgd-ce",
                            "apgd-dlr", "apgd-t", "fab-t", "square", "autoattack"}
    with pytest.raises(ValueError, match="valid: fgsm"):
        parse_attack("pgd-twenty")
    assert parse_eps("8/255") == pytest.approx(8 / 255)
    assert parse_eps(0.03) == 0.03
    with pytest.raises(ValueError, match="8/255"):
        parse_eps(8)
    with pytest.raises(ValueError, match="8/255"):
        parse_eps("eight")


@pytest.mark.parametrize("step_size,steps", [(0.001, 1), (0.01, 3), (0.05, 1)])
def test_pgd_moves_by_its_step_size(step_size, steps):
    """Without a random start, k sign-gradient steps of size s move each pixel by exactly min(k*s, eps) at most,
    and by s after one step (pixels away from the [0,1] edges): catches a step size that is ignored."""
    from mixacm.attacks import pgd_linf

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 10)).eval()
    x = 0.25 + 0.5 * torch.rand(16, 3, 4, 4)  # in [0.25, 0.75]: no clipping at the box
    y = torch.randint(0, 10, (16,))
    eps = 0.1
    x_adv = pgd_linf(model, x, y, eps=eps, step_size=step_size, steps=steps, random_start=False)
    moved = (x_adv - x).abs()
    assert moved.max() <= min(steps * step_size, eps) + 1e-6
    if steps == 1:  # a linear model has a nonzero input gradient everywhere: every pixel moves by exactly s
        assert torch.allclose(moved, torch.full_like(moved, step_size), atol=1e-6)
