"""The MILP worst logit against independent brute force: a dense grid in d=2 and PGD (both bounds from inside)."""
import numpy as np
import pytest

from theory.relu_milp import adversarial_logistic_loss, pgd_logit, worst_logit_l2, worst_logit_linf
from theory.relu_net import ReluNet


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_milp_matches_dense_grid_d2(bias, seed):
    rng = np.random.default_rng(seed)
    net = ReluNet.random([2, 8, 8, 1], rng, bias=bias)
    x, eps = rng.normal(size=2), 0.3
    g = np.linspace(-eps, eps, 401)
    D = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    vals = net.forward(x + D)[:, 0]
    for sense, grid in (("min", vals.min()), ("max", vals.max())):
        r = worst_logit_linf(net, x, eps, sense)
        sg = 1 if sense == "min" else -1
        # the grid is inside the ball: it can never beat the exact optimum; it gets within the grid's resolution
        assert sg * r["value_milp"] <= sg * grid + 1e-9, (sense, r["value_milp"], grid)
        lip = sum(np.abs(w).sum() for w in net.weights)  # crude Lipschitz bound for the grid spacing
        assert abs(r["value_milp"] - grid) <= lip * (2 * eps / 400), (r["value_milp"], grid)
        assert abs(r["value"] - r["value_milp"]) < 1e-7, "re-evaluation in float64 disagrees with the MILP"
        assert np.max(np.abs(r["delta"])) <= eps


def test_milp_never_beaten_by_pgd_2_16_16_1():
    rng = np.random.default_rng(3)
    for k in range(3):
        net = ReluNet.random([2, 16, 16, 1], rng, bias=bool(k % 2))
        x = rng.normal(size=2)
        x *= 2 / np.linalg.norm(x)
        for s in ("min", "max"):
            r = worst_logit_linf(net, x, 0.4, s)
            p = pgd_logit(net, x, 0.4, s, steps=50, restarts=3, rng=rng)
            sg = 1 if s == "min" else -1
            assert sg * r["value_milp"] <= sg * p["value"] + 1e-9
            assert r["time_s"] < 5.0


def test_l2_cutting_planes_bracket_grid():
    rng = np.random.default_rng(5)
    net = ReluNet.random([2, 8, 8, 1], rng, bias=True)
    x, rad = rng.normal(size=2), 0.4
    ang = np.linspace(0, 2 * np.pi, 721)
    rr = np.sqrt(np.linspace(0, 1, 121))[:, None, None] * rad
    D = (rr * np.stack([np.cos(ang), np.sin(ang)], -1)[None]).reshape(-1, 2)
    gmin = net.forward(x + D)[:, 0].min()
    r = worst_logit_l2(net, x, rad, "min")
    assert r["bound"] <= gmin + 1e-9 and r["value"] >= r["bound"] - 1e-9
    assert np.linalg.norm(r["delta"]) <= rad * (1 + 1e-12)
    assert r["value"] <= gmin + 1e-3


def test_adversarial_logistic_loss_soft_label_uses_both_ends():
    rng = np.random.default_rng(7)
    net = ReluNet.random([3, 6, 1], rng)
    x = rng.normal(size=3)
    r = adversarial_logistic_loss(net, x, 0.3, 0.2)
    lo = worst_logit_linf(net, x, 0.2, "min")["value"]
    hi = worst_logit_linf(net, x, 0.2, "max")["value"]
    expect = max(np.logaddexp(0, lo) - 0.3 * lo, np.logaddexp(0, hi) - 0.3 * hi)
    assert abs(r["loss"] - expect) < 1e-12
