"""Exact worst-case logit of a small ReLU net over an l_inf (or l_2) ball, by mixed-integer linear programming.

Used for the exact adversarial loss of Theorem 4.2 for networks (main text Sec. 4.1; Supp. B.2). Each unstable ReLU
h = relu(z), with interval bounds l < 0 < u on z, is encoded by the standard big-M constraints
h >= 0, h >= z, h <= u s, h <= z - l (1 - s), s in {0, 1}; stable ReLUs are fixed. Solved by HiGHS through
scipy.optimize.milp with mip_rel_gap = 0. The returned delta is re-evaluated in float64 and both numbers are reported:
`value_milp` (solver objective) and `value` (the net at the clipped delta, an achieved value, so a valid bound from the
inside). The logistic loss is monotone in the logit for y in {0, 1} and convex for soft labels, so the exact
adversarial loss is the loss at the worst logit, or the larger of the losses at the min and max logits.
"""
from __future__ import annotations

import time

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from theory.relu_net import ReluNet

_MILP_OPTIONS = {"mip_rel_gap": 0.0, "presolve": True}


def interval_bounds(net: ReluNet, x: np.ndarray, lo_d: np.ndarray, hi_d: np.ndarray) -> list[tuple]:
    """Interval bounds on every hidden pre-activation for inputs x + delta, delta in the box [lo_d, hi_d]."""
    lo, hi = x + lo_d, x + hi_d
    out = []
    for l, w in enumerate(net.weights[:-1]):
        wp, wn = np.maximum(w, 0), np.minimum(w, 0)
        zl = wp @ lo + wn @ hi + net.bias(l)
        zu = wp @ hi + wn @ lo + net.bias(l)
        out.append((zl, zu))
        lo, hi = np.maximum(zl, 0), np.maximum(zu, 0)
    return out


def _encode(net: ReluNet, x: np.ndarray, lo_d: np.ndarray, hi_d: np.ndarray, bnds: list, cuts: list):
    """Constraints of the big-M encoding of the hidden layers with the given pre-activation bounds.

    Variables [delta (d) | h_1 (n_1) | s_1 (n_1) | ... ]; returns (A, rlo, rhi, lb, ub, integrality, offsets)."""
    d = x.size
    hidden = [len(b[0]) for b in bnds]
    offs, o = [], d
    for n in hidden:
        offs.append(o)
        o += 2 * n
    nv = o
    lb, ub, integ = np.zeros(nv), np.zeros(nv), np.zeros(nv)
    lb[:d], ub[:d] = lo_d, hi_d
    rows, cols, vals, rlo, rhi = [], [], [], [], []
    r = 0

    def add_row(idx, v, lo_, hi_):
        nonlocal r
        rows.extend([r] * len(idx))
        cols.extend(idx)
        vals.extend(v)
        rlo.append(lo_)
        rhi.append(hi_)
        r += 1

    for l, n in enumerate(hidden):
        w, b = net.weights[l], net.bias(l)
        zl, zu = bnds[l]
        if l == 0:  # z = W (x + delta) + b: linear in delta with constant W x + b
            prev_idx, const = list(range(d)), w @ x + b
        else:
            prev_idx, const = list(range(offs[l - 1], offs[l - 1] + hidden[l - 1])), b
        for j in range(n):
            hj, sj = offs[l] + j, offs[l] + n + j
            negw = list(-w[j])
            if zu[j] <= 0:  # always off: h = 0
                lb[hj] = ub[hj] = 0.0
            elif zl[j] >= 0:  # always on: h - W h_prev = const
                lb[hj], ub[hj] = zl[j], zu[j]
                add_row([hj] + prev_idx, [1.0] + negw, const[j], const[j])
            else:
                lb[hj], ub[hj] = 0.0, zu[j]
                ub[sj], integ[sj] = 1.0, 1
                add_row([hj] + prev_idx, [1.0] + negw, const[j], np.inf)  # h >= z
                add_row([hj, sj], [1.0, -float(zu[j])], -np.inf, 0.0)  # h <= u s
                add_row([hj, sj] + prev_idx, [1.0, -float(zl[j])] + negw, -np.inf, const[j] - zl[j])  # h <= z - l(1-s)
    for u, rad in cuts:  # l2 outer approximation: u^T delta <= radius
        add_row(list(range(d)), list(u), -np.inf, rad)
    A = sparse.csr_array((vals, (rows, cols)), shape=(r, nv))
    return A, np.array(rlo), np.array(rhi), lb, ub, integ, offs


def _lin_obj(net: ReluNet, l: int, coef: np.ndarray, x: np.ndarray, nv: int, offs: list) -> tuple[np.ndarray, float]:
    """coef^T z_l (pre-activation of layer l) as (cost vector over the variables, constant)."""
    w, b = net.weights[l], net.bias(l)
    cost = np.zeros(nv)
    wl = coef @ w
    if l == 0:
        cost[:x.size] = wl
        return cost, float(wl @ x + coef @ b)
    n_prev = w.shape[1]
    cost[offs[l - 1]:offs[l - 1] + n_prev] = wl
    return cost, float(coef @ b)


def tightened_bounds(net: ReluNet, x: np.ndarray, lo_d: np.ndarray, hi_d: np.ndarray, cuts: list = ()) -> list:
    """Pre-activation bounds: exact for layer 1 (one linear map over a box), LP relaxation of the big-M encoding of
    the earlier layers (never looser than interval arithmetic) for deeper layers."""
    ib = interval_bounds(net, x, lo_d, hi_d)
    bnds = [ib[0]]
    for l in range(1, len(net.weights) - 1):
        A, rlo, rhi, lb, ub, _, offs = _encode(net, x, lo_d, hi_d, bnds, list(cuts))
        zl, zu = interval_bounds_from(net, l, bnds[-1])
        zl, zu = np.maximum(zl, ib[l][0]), np.minimum(zu, ib[l][1])
        cons = [LinearConstraint(A, rlo, rhi)] if A.shape[0] else []
        for j in np.where((zl < 0) & (zu > 0))[0]:
            e = np.zeros(net.weights[l].shape[0])
            e[j] = 1.0
            cost, const = _lin_obj(net, l, e, x, A.shape[1], offs)
            for sgn in (1.0, -1.0):
                res = milp(sgn * cost, constraints=cons, bounds=Bounds(lb, ub))
                if res.status == 0:
                    v = sgn * res.fun + const
                    if sgn > 0:
                        zl[j] = max(zl[j], v - 1e-9 * (1 + abs(v)))
                    else:
                        zu[j] = min(zu[j], v + 1e-9 * (1 + abs(v)))
        bnds.append((zl, zu))
    return bnds


def interval_bounds_from(net: ReluNet, l: int, prev: tuple) -> tuple:
    """Interval bounds of layer l's pre-activation from layer l-1's pre-activation bounds."""
    lo, hi = np.maximum(prev[0], 0), np.maximum(prev[1], 0)
    w = net.weights[l]
    wp, wn = np.maximum(w, 0), np.minimum(w, 0)
    return wp @ lo + wn @ hi + net.bias(l), wp @ hi + wn @ lo + net.bias(l)


def _build(net, x, lo_d, hi_d, c, cuts):
    bnds = tightened_bounds(net, x, lo_d, hi_d, cuts)
    A, rlo, rhi, lb, ub, integ, offs = _encode(net, x, lo_d, hi_d, bnds, cuts)
    L = len(net.weights) - 1
    cost, const = _lin_obj(net, L, c, x, A.shape[1], offs)
    cons = [LinearConstraint(A, rlo, rhi)] if A.shape[0] else []
    return cost, const, cons, Bounds(lb, ub), integ, int(integ.sum())


def _solve(net, x, lo_d, hi_d, sense, c, cuts, time_limit):
    cost, const, cons, bounds, integ, n_unst = _build(net, x, lo_d, hi_d, c, cuts)
    sgn = 1.0 if sense == "min" else -1.0
    opts = dict(_MILP_OPTIONS, time_limit=time_limit)
    res = milp(sgn * cost, constraints=cons, bounds=bounds, integrality=integ, options=opts)
    if res.x is None:
        raise RuntimeError(f"MILP found no solution (status {res.status}: {res.message}); "
                           f"raise time_limit (now {time_limit} s) or shrink the net")
    return res, sgn * res.fun + const, n_unst


def worst_logit_linf(net: ReluNet, x: np.ndarray, eps: float, sense: str = "min", c: np.ndarray | None = None,
                     time_limit: float = 60.0) -> dict:
    """min (sense='min') or max of c^T f(x + delta) over ||delta||_inf <= eps, exactly (MILP, zero relative gap)."""
    if sense not in ("min", "max"):
        raise ValueError(f"sense must be 'min' or 'max', got {sense!r}")
    x = np.asarray(x, dtype=np.float64)
    c = np.ones(net.sizes[-1]) if c is None else np.asarray(c, dtype=np.float64)
    t0 = time.perf_counter()
    res, val, n_unst = _solve(net, x, -eps * np.ones(x.size), eps * np.ones(x.size), sense, c, [], time_limit)
    delta = np.clip(res.x[:x.size], -eps, eps)
    reeval = float(c @ net.forward(x + delta))
    bound = getattr(res, "mip_dual_bound", None)
    return {"value_milp": float(val), "value": reeval, "delta": delta, "status": int(res.status),
            "optimal": res.status == 0, "mip_gap": getattr(res, "mip_gap", None),
            "dual_bound": None if bound is None else float((1 if sense == "min" else -1) * bound + (val - (1 if sense == "min" else -1) * res.fun)),
            "n_unstable": n_unst, "time_s": time.perf_counter() - t0}


def worst_logit_l2(net: ReluNet, x: np.ndarray, radius: float, sense: str = "min", c: np.ndarray | None = None,
                   tol: float = 1e-7, max_cuts: int = 60, time_limit: float = 60.0) -> dict:
    """min/max of c^T f(x + delta) over ||delta||_2 <= radius by cutting planes: every MILP is over a polytope that
    contains the ball, so its objective is a certified bound from the outside ('bound'); the net at the returned point
    scaled onto the ball is achieved ('value'). Stops when they agree to tol (absolute) or after max_cuts cuts."""
    x = np.asarray(x, dtype=np.float64)
    c = np.ones(net.sizes[-1]) if c is None else np.asarray(c, dtype=np.float64)
    d = x.size
    t0 = time.perf_counter()
    if d == 2:  # a regular 32-gon around the disc: most of the work done before the first solve
        ang = np.arange(32) * np.pi / 16
        cuts: list = [(np.array([np.cos(t), np.sin(t)]), radius) for t in ang]  # tangent lines: outside
    else:
        cuts = []
    best_val, best_delta = None, np.zeros(d)
    better = (lambda a, b: a < b) if sense == "min" else (lambda a, b: a > b)
    bound = None
    for it in range(max_cuts + 1):
        res, val, _ = _solve(net, x, -radius * np.ones(d), radius * np.ones(d), sense, c, cuts, time_limit)
        bound = val
        dl = res.x[:d]
        nrm = np.linalg.norm(dl)
        cand = dl if nrm <= radius else dl * (radius / nrm)
        v = float(c @ net.forward(x + cand))
        if best_val is None or better(v, best_val):
            best_val, best_delta = v, cand
        if abs(bound - best_val) <= tol or nrm <= radius * (1 + 1e-12):
            break
        cuts.append((dl / nrm, radius))
    return {"value": best_val, "bound": float(bound), "delta": best_delta, "gap": abs(float(bound) - best_val),
            "n_cuts": len(cuts), "time_s": time.perf_counter() - t0}


def pgd_logit(net: ReluNet, x: np.ndarray, radius: float, sense: str = "min", norm: str = "inf", steps: int = 100,
              restarts: int = 5, rng: np.random.Generator | None = None, out: int = 0) -> dict:
    """Projected gradient descent/ascent on output `out`: an achieved value, hence a bound from the inside."""
    rng = np.random.default_rng(0) if rng is None else rng
    x = np.asarray(x, dtype=np.float64)
    sgn = -1.0 if sense == "min" else 1.0
    best_v, best_d = None, np.zeros_like(x)

    def proj(dl):
        if norm == "inf":
            return np.clip(dl, -radius, radius)
        n = np.linalg.norm(dl)
        return dl if n <= radius else dl * radius / n

    for r in range(restarts):
        dl = proj(rng.uniform(-radius, radius, x.size)) if r else np.zeros_like(x)
        step = 2.5 * radius / steps * (1 if norm == "inf" else 1)
        for t in range(steps):
            g = sgn * net.grad(x + dl, out)
            if norm == "inf":
                dl = proj(dl + 2 * step * np.sign(g))
            else:
                gn = np.linalg.norm(g)
                dl = proj(dl + 2 * step * g / gn) if gn > 0 else dl
            v = float(net.forward(x + dl)[out])
            if best_v is None or sgn * v > sgn * best_v:
                best_v, best_d = v, dl.copy()
    return {"value": best_v, "delta": best_d}


def logistic_loss(f: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
    """L(f, y) = log(1 + e^f) - y f (Supp. B.2, 'L(f_theta(x), y) = h(f_theta(x)) - y f_theta(x)'), stable."""
    f = np.asarray(f, dtype=np.float64)
    return np.logaddexp(0.0, f) - np.asarray(y, dtype=np.float64) * f


def adversarial_logistic_loss(net: ReluNet, x: np.ndarray, y: float, radius: float, norm: str = "inf",
                              time_limit: float = 60.0) -> dict:
    """Exact max over the ball of L(f(x + delta), y): the set of logits over the (connected) ball is [f_min, f_max]
    and L(., y) is convex, so the max is at an end; for y = 1 only f_min matters, for y = 0 only f_max.

    Returns 'loss' (achieved, from re-evaluated deltas), 'loss_upper' (from the solver's values) and the deltas."""
    solve = (lambda s: worst_logit_linf(net, x, radius, s, time_limit=time_limit)) if norm == "inf" else (
        lambda s: worst_logit_l2(net, x, radius, s, time_limit=time_limit))
    senses = ["min"] if y == 1 else ["max"] if y == 0 else ["min", "max"]
    best, upper, arg = -np.inf, -np.inf, None
    for s in senses:
        r = solve(s)
        outer = r["value_milp"] if norm == "inf" else r["bound"]
        lv = float(logistic_loss(r["value"], y))
        upper = max(upper, float(logistic_loss(outer, y)))
        if lv > best:
            best, arg = lv, r
    return {"loss": best, "loss_upper": max(upper, best), "delta": arg["delta"], "logit": arg["value"]}
