"""One training step of each compared method against a float64 reference written from its paper and its official
code, on a BatchNorm WRN-10-1 and inputs with about a third of the pixels exactly 0 or 1 (real images have about a
fifth): the adversarial examples, the loss, the parameter gradients, the BatchNorm running statistics after the
step and the weights after the optimiser step (and AWP's restore) agree to rounding.

Each reference re-states what the official code does, step by step (the comment names the repository, file and
lines); it shares nothing with mixacm but the model, the random draws of the attack's start and the optimiser.
``one_step(case)`` returns the maximum relative differences; the tests ask for < 1e-9."""
from __future__ import annotations

import copy
import json
import math
import os
import tempfile

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mixacm.config import TrainConfig
from mixacm.methods import METHODS
from mixacm.models import build_model
from mixacm.steps import StepContext, WithFeatures
from mixacm.teachers import FrozenTeacher

TOL = 1e-9
B, SIDE = 6, 8
LR, MOMENTUM, WD = 0.1, 0.9, 5e-4  # one plain-momentum SGD step, as every official code takes (same on both sides)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


class Recorder(nn.Module):
    """The student, recording each forward's input, mode and whether gradients were on (to read x' of our step)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.seen: list[tuple[Tensor, bool, bool]] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append((x.detach().clone(), self.training, torch.is_grad_enabled() and not x.requires_grad))
        return self.inner(x)


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("wrn-10-1", num_classes=10).double().train()


def _batch() -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(B, 3, SIDE, SIDE, generator=g, dtype=torch.float64)
    u = torch.rand(x.shape, generator=g, dtype=torch.float64)
    x = torch.where(u < 0.17, torch.zeros_like(x), torch.where(u > 0.83, torch.ones_like(x), x))  # saturated pixels
    return x, torch.randint(0, 10, (B,), generator=g)


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(7)


def _normal(x: Tensor, g: torch.Generator) -> Tensor:  # the start's draw, as mixacm draws it (float32, then cast)
    return torch.randn(x.shape, generator=g).to(x)


def _uniform(x: Tensor, g: torch.Generator, eps: float) -> Tensor:
    return (torch.rand(x.shape, generator=g).to(x) * 2 - 1) * eps


def _kl_sum(log_q: Tensor, p: Tensor) -> Tensor:  # nn.KLDivLoss(size_average=False)(log_q, p)
    return (torch.xlogy(p, p) - p * log_q).sum()


def _project(x_adv: Tensor, x: Tensor, eps: float) -> Tensor:
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0.0, 1.0)


def _bn_stats(model: nn.Module) -> list[Tensor]:
    return [b.detach().clone() for n, b in model.named_buffers() if "running" in n]


def _rel(a: list[Tensor], b: list[Tensor]) -> float:
    assert len(a) == len(b)
    return max(((u - v).abs().max() / v.abs().max().clamp_min(1e-300)).item() for u, v in zip(a, b))


def _sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)


# ------------------------------------------------------------------------------------------------------ references
def _trades_attack(model, x, g, *, eps, step, steps):
    """The TRADES attack, as trades.py (L28-41) and AWP's perturb_input (L101-120) both write it: eval mode, start
    x + 0.001 N(0, I) not clamped, signed steps on the KL sum of model(x') to model(x), ball and [0,1]; train mode
    after."""
    model.eval()
    x_adv = x + 0.001 * _normal(x, g)
    for _ in range(steps):
        x_adv.requires_grad_()
        loss_kl = _kl_sum(F.log_softmax(model(x_adv), 1), F.softmax(model(x), 1))
        grad = torch.autograd.grad(loss_kl, [x_adv])[0]
        x_adv = _project(x_adv.detach() + step * grad.sign(), x, eps)
    model.train()
    return x_adv


def ref_trades(model, x, y, g, *, eps, step, steps, beta):
    """yaodongyu/TRADES trades.py, trades_loss (L17-86): eval mode while crafting (L28); start x + 0.001 N(0, I),
    not clamped (L31); each step: KL sum of model(x') to model(x), signed step, ball, [0,1] (L33-41); train mode
    (L74); forwards model(x) for the CE (L80-81), model(x') and model(x) again for the KL / batch size (L82-83)."""
    x_adv = _trades_attack(model, x, g, eps=eps, step=step, steps=steps)
    logits = model(x)
    loss_natural = F.cross_entropy(logits, y)
    loss_robust = _kl_sum(F.log_softmax(model(x_adv), 1), F.softmax(model(x), 1)) / len(x)
    return x_adv, loss_natural + beta * loss_robust


def ref_mart(model, x, y, g, *, eps, step, steps, lam):
    """YisenWang/MART mart.py, mart_loss (L15-66): eval mode while crafting (L25); start x + 0.001 N(0, I), not
    clamped (L28); CE steps (L30-36); train mode (L39); forwards model(x), model(x') (L46-48); BCE with the top
    wrong class of p(x') and 1.0001 / 1e-12 (L50-56); KL(p(x) || p(x')) per example, weighted by 1.0000001 - p_y(x),
    over the batch size (L58-62)."""
    model.eval()
    x_adv = x + 0.001 * _normal(x, g)
    for _ in range(steps):
        x_adv.requires_grad_()
        grad = torch.autograd.grad(F.cross_entropy(model(x_adv), y), [x_adv])[0]
        x_adv = _project(x_adv.detach() + step * grad.sign(), x, eps)
    model.train()
    logits = model(x)
    logits_adv = model(x_adv)
    adv_probs = F.softmax(logits_adv, 1)
    top2 = torch.argsort(adv_probs, dim=1)[:, -2:]
    new_y = torch.where(top2[:, -1] == y, top2[:, -2], top2[:, -1])
    loss_adv = F.cross_entropy(logits_adv, y) + F.nll_loss(torch.log(1.0001 - adv_probs + 1e-12), new_y)
    nat_probs = F.softmax(logits, 1)
    true_probs = nat_probs.gather(1, y[:, None]).squeeze(1)
    kl = (torch.xlogy(nat_probs, nat_probs) - nat_probs * torch.log(adv_probs + 1e-12)).sum(1)
    return x_adv, loss_adv + lam * (kl * (1.0000001 - true_probs)).sum() / len(x)


def _awp_diff(model: nn.Module, proxy: nn.Module) -> dict[str, Tensor]:
    """csdongxian/AWP utils_awp.py diff_in_weights (L8-18): per state-dict entry of dim > 1 named 'weight',
    (proxy - model) scaled to the model weight's norm (1e-20 added to the difference's norm)."""
    out = {}
    for (k, w), (_, w_new) in zip(model.state_dict().items(), proxy.state_dict().items()):
        if w.dim() <= 1 or "weight" not in k:
            continue
        d = w_new - w
        out[k] = w.norm() / (d.norm() + 1e-20) * d
    return out


def _add(model: nn.Module, diff: dict[str, Tensor], coeff: float) -> None:  # utils_awp.py add_into_weights (L21-26)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in diff:
                p.add_(coeff * diff[n])


def ref_awp_trades(model, x, y, g, *, eps, step, steps, beta, gamma, active):
    """csdongxian/AWP trades_AWP/train_trades_cifar.py: perturb_input (L101-120: eval mode, start x + 0.001 N(0, I)
    not clamped, KL-sum steps); train mode (L177); TradesAWP.calc_awp in utils_awp.py (L38-54: a proxy with the
    model's state in train mode, forwards proxy(x), proxy(x'), proxy(x), one SGD step (lr 0.1, L279) on minus the
    TRADES loss with a batchmean KL) and perturb (gamma times the normalised difference) when epoch >= awp_warmup
    (L179-184); forwards model(x') and model(x) for the KL, model(x) for the CE (L187-193). Returns the restore."""
    x_adv = _trades_attack(model, x, g, eps=eps, step=step, steps=steps)
    diff = {}
    if active:
        proxy = copy.deepcopy(model).train()
        proxy_opt = torch.optim.SGD(proxy.parameters(), lr=0.1)
        loss_natural = F.cross_entropy(proxy(x), y)
        loss_robust = _kl_sum(F.log_softmax(proxy(x_adv), 1), F.softmax(proxy(x), 1)) / len(x)
        proxy_opt.zero_grad()
        (-1.0 * (loss_natural + beta * loss_robust)).backward()
        proxy_opt.step()
        diff = _awp_diff(model, proxy)
        _add(model, diff, gamma)
    logits_adv = model(x_adv)
    loss_robust = _kl_sum(F.log_softmax(logits_adv, 1), F.softmax(model(x), 1)) / len(x)
    loss = F.cross_entropy(model(x), y) + beta * loss_robust
    return x_adv, loss, (lambda: _add(model, diff, -gamma))


def _rice_attack(model, x, y, g, *, eps, step, steps):
    """locuslab/robust_overfitting train_cifar.py attack_pgd (L70-123), one restart: delta ~ U(-eps, eps) clamped so
    that x + delta is in [0,1] (L76-87); CE steps on x + delta in the model's (train) mode, delta clipped to the
    ball and the box (L89-115); one more forward for the restart's loss (L120)."""
    delta = _uniform(x, g, eps)
    delta = torch.max(torch.min(delta, 1 - x), -x)
    for _ in range(steps):
        delta.requires_grad_()
        grad = torch.autograd.grad(F.cross_entropy(model(x + delta), y), [delta])[0]
        d = torch.clamp(delta.detach() + step * grad.sign(), -eps, eps)
        delta = torch.max(torch.min(d, 1 - x), -x)
    with torch.no_grad():
        model(x + delta)
    return (x + delta).clamp(0, 1)


def ref_awp_at(model, x, y, g, *, eps, step, steps, gamma):
    """csdongxian/AWP AT_AWP/train_cifar10.py: the model in train mode while crafting (model.train() at L338 holds
    from the previous batch), attack_pgd (L72-125, as Rice et al.'s, with its final forward); AdvWeightPerturb in
    AT_AWP/utils_awp.py (L37-54: proxy in train mode, minus CE on x', SGD lr 0.01 (L241), normalised difference
    times gamma); forward model(x') (L347); after the optimiser step, restore (L362-363) and a forward of the clean
    batch for the log (L365)."""
    model.train()
    x_adv = _rice_attack(model, x, y, g, eps=eps, step=step, steps=steps)
    proxy = copy.deepcopy(model).train()
    proxy_opt = torch.optim.SGD(proxy.parameters(), lr=0.01)
    proxy_opt.zero_grad()
    (-F.cross_entropy(proxy(x_adv), y)).backward()
    proxy_opt.step()
    diff = _awp_diff(model, proxy)
    _add(model, diff, gamma)
    loss = F.cross_entropy(model(x_adv), y)

    def after():
        _add(model, diff, -gamma)
        with torch.no_grad():
            model(x)
    return x_adv, loss, after


def ref_fat_trades(model, x, y, g, *, eps, step, steps, tau, beta):
    """zjfheart/Friendly-Adversarial-Training earlystop.py (L5-113) with FAT_for_TRADES.py's train (L58-82): eval
    mode (L18); start x + 0.001 N(0, I) clamped to [0,1] (L31-32); KL target model(x) (L41); each of K iterations:
    points misclassified with no budget left are set aside unchanged, a misclassified point with budget spends one,
    the others step (L43-102); train mode; forwards on the natural inputs then the friendly adversarial ones (L74-75);
    CE + beta KL-sum / batch size (L48-56). The code returns the points in the order they stopped; the indices kept
    here only put them back in the batch's order for the comparison."""
    model.eval()
    iter_adv = (x + 0.001 * _normal(x, g)).clamp(0.0, 1.0)
    control = torch.full((len(x),), float(tau))
    iter_clean, iter_target, ids = x, y, torch.arange(len(x))
    clean_out = model(x)
    out_adv, out_ids = [], []
    k = steps
    while k > 0:
        iter_adv.requires_grad_()
        output = model(iter_adv)
        pred = output.argmax(1)
        output_index, iter_index = [], []
        for i in range(len(pred)):
            if pred[i] != iter_target[i]:
                if control[i] == 0:
                    output_index.append(i)
                else:
                    control[i] -= 1
                    iter_index.append(i)
            else:
                iter_index.append(i)
        if output_index:
            out_adv.append(iter_adv[output_index].detach())
            out_ids.append(ids[output_index])
        loss_adv = _kl_sum(F.log_softmax(output, 1), F.softmax(clean_out, 1))
        grad = torch.autograd.grad(loss_adv, [iter_adv], retain_graph=True)[0]
        if not iter_index:
            break
        control, iter_clean, iter_target = control[iter_index], iter_clean[iter_index], iter_target[iter_index]
        clean_out, grad, ids = clean_out[iter_index], grad[iter_index], ids[iter_index]
        iter_adv = _project(iter_adv[iter_index].detach() + step * grad.sign(), iter_clean, eps)
        k -= 1
    else:
        out_adv.append(iter_adv.detach())
        out_ids.append(ids)
    order = torch.cat(out_ids)
    output_adv, output_natural, output_target = torch.cat(out_adv), x[order], y[order]
    model.train()
    natural_logits = model(output_natural)
    adv_logits = model(output_adv)
    loss = F.cross_entropy(natural_logits, output_target) + beta * _kl_sum(
        F.log_softmax(adv_logits, 1), F.softmax(natural_logits, 1)) / len(x)
    return output_adv[torch.argsort(order)], loss


def ref_pgd_at_madry(model, x, y, g, *, eps, step, steps):
    """MadryLab/cifar10_challenge: the attack differentiates the Model(mode='train') graph (train.py L41, L57-62), so
    its batch norm runs on batch statistics and moves the moving averages at every attack step (model.py L100-110:
    is_training, updates_collections=None); pgd_attack.py perturb (L43-61): start x + U(-eps, eps) clipped to the
    pixel range, signed steps clipped to the ball and the range; the training step on x' (train.py L52-54)."""
    model.train()
    x_adv = (x + _uniform(x, g, eps)).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_()
        grad = torch.autograd.grad(F.cross_entropy(model(x_adv), y, reduction="sum"), [x_adv])[0]
        x_adv = _project(x_adv.detach() + step * grad.sign(), x, eps)
    return x_adv, F.cross_entropy(model(x_adv), y)


def ref_pgd_at_rice(model, x, y, g, *, eps, step, steps):
    """locuslab/robust_overfitting train_cifar.py: train mode for the epoch (L294), attack_pgd (L316, with its final
    forward), forward on x' (L324), after the optimiser step a forward of the clean batch for the log (L339)."""
    model.train()
    x_adv = _rice_attack(model, x, y, g, eps=eps, step=step, steps=steps)
    loss = F.cross_entropy(model(x_adv), y)

    def after():
        with torch.no_grad():
            model(x)
    return x_adv, loss, after


def ref_ard(model, teacher, x, y, g, *, eps, step, steps, alpha, temp):
    """goldblum/AdversariallyRobustDistillation main.py: train mode (L118); AttackPGD.forward (L68-79): start
    x + U(-eps, eps) not clamped, CE-sum steps in train mode, ball and [0,1], then basic_net(x') for the loss; the
    teacher (eval, L111) on x (L125); basic_net(x) (L126); alpha T^2 nn.KLDivLoss() (mean over batch x classes, L113)
    + (1 - alpha) CE (L127)."""
    model.train()
    xa = x + _uniform(x, g, eps)
    for _ in range(steps):
        xa.requires_grad_()
        grad = torch.autograd.grad(F.cross_entropy(model(xa), y, reduction="sum"), [xa])[0]
        xa = _project(xa.detach() + step * grad.sign(), x, eps)
    outputs = model(xa)
    with torch.no_grad():
        teacher_outputs = teacher(x)
    basic_outputs = model(x)
    p_t = F.softmax(teacher_outputs / temp, 1)
    kl_mean = _kl_sum(F.log_softmax(outputs / temp, 1), p_t) / p_t.numel()
    return xa, alpha * temp * temp * kl_mean + (1.0 - alpha) * F.cross_entropy(basic_outputs, y)


def ref_free_at(model, x, y, *, eps, replays, opt):
    """mahyarnajibi/FreeAdversarialTraining main_free.py train (L173-202) (ashafahi/free_adv_train free_train.py
    L51-59 alike): per replay, the noise as a leaf, input = clamp(x + noise) in place (so the noise's gradient is
    zero where x + noise leaves [0,1]), CE, backward, noise += eps sign(grad), clipped to the ball, optimiser step."""
    noise = torch.zeros_like(x)
    out = []
    model.train()
    for _ in range(replays):
        noise_batch = noise.clone().requires_grad_(True)
        in1 = x + noise_batch
        in1.clamp_(0, 1.0)
        loss = F.cross_entropy(model(in1), y)
        opt.zero_grad()
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters()]
        noise = (noise + eps * noise_batch.grad.sign()).clamp(-eps, eps)
        opt.step()
        out.append((noise.clone(), loss.detach(), grads))
    return out


# ------------------------------------------------------------------------------------------------------------ cases
EPS, STEP_2, STEP_007, EPS_031 = 8 / 255, 2 / 255, 0.007, 0.031

CASES = {
    # name: (our config, epoch, reference)
    "trades": ({"method": "trades", "eps": EPS_031, "attack_step": STEP_007, "attack_steps": 10}, 0,
               lambda m, x, y, g, t: ref_trades(m, x, y, g, eps=EPS_031, step=STEP_007, steps=10, beta=6.0)),
    "mart": ({"method": "mart", "eps": EPS_031, "attack_step": STEP_007, "attack_steps": 10}, 0,
             lambda m, x, y, g, t: ref_mart(m, x, y, g, eps=EPS_031, step=STEP_007, steps=10, lam=6.0)),
    # epoch 9 (0-based) is the TRADES-AWP code's epoch 10: the first with AWP
    "awp_trades": ({"method": "awp", "awp_base": "trades", "eps": EPS, "attack_step": STEP_2, "attack_steps": 10,
                    "awp_gamma": 5e-3}, 9,
                   lambda m, x, y, g, t: ref_awp_trades(m, x, y, g, eps=EPS, step=STEP_2, steps=10, beta=6.0,
                                                        gamma=5e-3, active=True)),
    "awp_pgd_at": ({"method": "awp", "awp_base": "pgd_at", "eps": EPS, "attack_step": STEP_2, "attack_steps": 10,
                    "awp_gamma": 1e-2, "awp_warmup_epochs": 0, "attack_bn": "train", "bn_logging_passes": True}, 0,
                   lambda m, x, y, g, t: ref_awp_at(m, x, y, g, eps=EPS, step=STEP_2, steps=10, gamma=1e-2)),
    "fat_tau1": ({"method": "fat", "eps": EPS_031, "attack_step": STEP_007, "attack_steps": 10, "fat_tau": 1}, 0,
                 lambda m, x, y, g, t: ref_fat_trades(m, x, y, g, eps=EPS_031, step=STEP_007, steps=10, tau=1,
                                                      beta=6.0)),
    # the FAT code's dynamic tau: epoch 52 of 85 (1-based) trains with tau 2
    "fat_dynamic": ({"method": "fat", "eps": EPS_031, "attack_step": STEP_007, "attack_steps": 10, "epochs": 85,
                     "fat_tau_milestones": [30 / 85, 50 / 85, 70 / 85]}, 51,
                    lambda m, x, y, g, t: ref_fat_trades(m, x, y, g, eps=EPS_031, step=STEP_007, steps=10, tau=2,
                                                         beta=6.0)),
    "pgd_at_madry": ({"method": "pgd_at", "eps": EPS, "attack_step": STEP_2, "attack_steps": 7, "attack_bn": "train"},
                     0, lambda m, x, y, g, t: ref_pgd_at_madry(m, x, y, g, eps=EPS, step=STEP_2, steps=7)),
    "pgd_at_rice": ({"method": "pgd_at", "eps": EPS, "attack_step": STEP_2, "attack_steps": 10, "attack_bn": "train",
                     "bn_logging_passes": True}, 0,
                    lambda m, x, y, g, t: ref_pgd_at_rice(m, x, y, g, eps=EPS, step=STEP_2, steps=10)),
    "ard": ({"method": "ard", "eps": EPS, "attack_step": STEP_2, "attack_steps": 10, "attack_bn": "train",
             "alpha_kld": 1.0, "temperature": 30.0}, 0,
            lambda m, x, y, g, t: ref_ard(m, t, x, y, g, eps=EPS, step=STEP_2, steps=10, alpha=1.0, temp=30.0)),
    "ard_alpha_half": ({"method": "ard", "eps": EPS, "attack_step": STEP_2, "attack_steps": 10, "attack_bn": "train",
                        "alpha_kld": 0.5, "temperature": 30.0}, 0,
                       lambda m, x, y, g, t: ref_ard(m, t, x, y, g, eps=EPS, step=STEP_2, steps=10, alpha=0.5,
                                                     temp=30.0)),
}


def _teacher() -> FrozenTeacher:
    torch.manual_seed(5)
    return FrozenTeacher(build_model("wrn-10-1", num_classes=10).double())


def _ours(cfg: TrainConfig, epoch: int, student: nn.Module | None = None):
    rec = Recorder(_model())
    ctx = StepContext(cfg=cfg, student=student(rec) if student else WithFeatures(rec), student_module=rec,
                      teacher=_teacher(), generator=_gen(), epoch=epoch)
    return rec, ctx


def one_step(name: str) -> dict[str, float]:
    """Max relative differences (ours vs the reference) of x', loss, gradients, BN running statistics and the
    weights after the optimiser step."""
    over, epoch, ref = CASES[name]
    x, y = _batch()
    cfg = TrainConfig(model="wrn-10-1", **over)

    rec, ctx = _ours(cfg, epoch)
    out = METHODS[cfg.method](ctx, x, y)
    opt = _sgd(rec)
    opt.zero_grad()
    out.loss.backward()
    grads = [p.grad.clone() for p in rec.parameters()]
    opt.step()
    if out.post_step is not None:
        out.post_step()
    train_inputs = [part for inp, training, grad in rec.seen if training and grad for part in inp.split(len(x))
                    if not torch.equal(part, x)]
    x_adv = train_inputs[-1]

    model = _model()
    res = ref(model, x, y, _gen(), _teacher())
    x_adv_ref, loss_ref = res[0], res[1]
    opt_ref = _sgd(model)
    opt_ref.zero_grad()
    loss_ref.backward()
    grads_ref = [p.grad.clone() for p in model.parameters()]
    opt_ref.step()
    if len(res) > 2:
        res[2]()
    return {"x_adv": _rel([x_adv], [x_adv_ref]), "loss": _rel([out.loss.detach()], [loss_ref.detach()]),
            "grads": _rel(grads, grads_ref), "bn_stats": _rel(_bn_stats(rec), _bn_stats(model)),
            "weights": _rel([p.detach() for p in rec.parameters()], [p.detach() for p in model.parameters()])}


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_step_matches_the_official_code(name):
    d = one_step(name)
    assert all(v < TOL for v in d.values()), (name, d)


def free_at_replays(replays: int = 3) -> dict[str, float]:
    x, y = _batch()
    cfg = TrainConfig(model="wrn-10-1", method="free_at", free_replays=replays)
    rec, ctx = _ours(cfg, 0)
    opt = _sgd(rec)
    ours = []
    for _ in range(replays):  # the trainer's replay loop
        out = METHODS["free_at"](ctx, x, y)
        opt.zero_grad()
        out.loss.backward()
        grads = [p.grad.clone() for p in rec.parameters()]
        opt.step()
        out.post_step()
        ours.append((ctx.extras["free_delta"].clone(), out.loss.detach(), grads))
    model = _model()
    ref = ref_free_at(model, x, y, eps=cfg.eps, replays=replays, opt=_sgd(model))
    return {"delta": max(_rel([a[0]], [b[0]]) for a, b in zip(ours, ref)),
            "loss": max(_rel([a[1]], [b[1]]) for a, b in zip(ours, ref)),
            "grads": max(_rel(a[2], b[2]) for a, b in zip(ours, ref)),
            "bn_stats": _rel(_bn_stats(rec), _bn_stats(model)),
            "weights": _rel([p.detach() for p in rec.parameters()], [p.detach() for p in model.parameters()])}


def test_free_at_replays_match_the_official_code():
    d = free_at_replays()
    assert all(v < TOL for v in d.values()), d


def test_the_inputs_are_saturated_and_the_saturation_matters():
    """A third of the pixels at 0 or 1; on them Free-AT's delta freezes once x + delta leaves [0,1], which a gradient
    taken after the clamp would not do (the official deltas end up to 2 eps apart from that)."""
    x, _ = _batch()
    frac = ((x == 0) | (x == 1)).double().mean().item()
    assert 0.25 < frac < 0.45, frac
    d = free_at_replays()
    assert d["delta"] < TOL


# -------------------------------------------------------------------------------------------- epochs and schedules
def test_awp_starts_at_the_official_epoch():
    """TRADES-AWP code: AWP when the 1-based epoch >= awp_warmup (10, L179, L294): 0-based epoch 9 is the first."""
    from mixacm import baselines as Bm

    x, y = _batch()
    for epoch, expect in [(8, False), (9, True)]:
        rec, ctx = _ours(TrainConfig(model="wrn-10-1", method="awp", attack_steps=1), epoch)
        w0 = [p.detach().clone() for p in rec.parameters()]
        out = Bm.awp_step(ctx, x, y)
        moved = any(not torch.equal(p, w) for p, w in zip(rec.parameters(), w0))
        assert moved == expect and (out.post_step is not None) == expect, epoch


def test_fat_tau_schedule_is_the_official_one():
    """FAT_for_TRADES.py adjust_tau (L90-101) on the 1-based epoch: 0 to 30, 1 to 50, 2 to 70, 3 after, of 85."""
    from mixacm.baselines import fat_tau

    cfg = TrainConfig(method="fat", epochs=85, fat_tau_milestones=[30 / 85, 50 / 85, 70 / 85])
    official = [0 if e <= 30 else 1 if e <= 50 else 2 if e <= 70 else 3 for e in range(1, 86)]
    assert [fat_tau(cfg, e) for e in range(85)] == official
    assert fat_tau(TrainConfig(method="fat"), 0) == 3  # no milestones: fat_tau throughout


# ------------------------------------------------------------------------------------------------------------ DDP
def _ddp_worker(rank: int, world: int, init: str, out_dir: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        x, y = _batch()
        x, y = x[rank::world], y[rank::world]
        cfg = TrainConfig(model="wrn-10-1", method="trades", eps=EPS_031, attack_step=STEP_007, attack_steps=3)
        rec, ctx = _ours(cfg, 0, student=lambda m: DDP(WithFeatures(m)))
        ctx.distributed = True
        out = METHODS["trades"](ctx, x, y)
        out.loss.backward()
        torch.save({"grads": [p.grad for p in rec.parameters()], "bn": _bn_stats(rec)},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_separate_forwards_under_ddp():
    """Two gloo ranks: one DDP call per backward that runs the model on x and x' separately gives each rank the
    BatchNorm statistics of its own separate forwards and the mean of the ranks' single-process gradients."""
    import torch.distributed as dist
    import torch.multiprocessing as mp

    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("needs gloo")
    world = 2
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(_ddp_worker, args=(world, f"file://{d}/pg", d), nprocs=world)
        got = [torch.load(os.path.join(d, f"rank{r}.pt")) for r in range(world)]
    x, y = _batch()
    cfg = TrainConfig(model="wrn-10-1", method="trades", eps=EPS_031, attack_step=STEP_007, attack_steps=3)
    single = []
    for r in range(world):
        rec, ctx = _ours(cfg, 0)
        out = METHODS["trades"](ctx, x[r::world], y[r::world])
        out.loss.backward()
        single.append(([p.grad for p in rec.parameters()], _bn_stats(rec)))
    mean = [(a + b) / 2 for a, b in zip(single[0][0], single[1][0])]
    for r in range(world):
        assert _rel(got[r]["grads"], mean) < TOL
        assert _rel(got[r]["bn"], single[r][1]) < TOL


if __name__ == "__main__":  # the table of the closing note: python tests/mixacm/test_baselines_official.py
    torch.set_num_threads(1)
    rows = {n: one_step(n) for n in sorted(CASES)}
    rows["free_at (3 replays)"] = free_at_replays()
    print(json.dumps({n: {k: float(f"{v:.2e}") for k, v in r.items()} for n, r in rows.items()}, indent=1))
    assert all(math.isfinite(v) for r in rows.values() for v in r.values())


# ------------------------------------------------------------------------------------------ the Table 1 recipes
TABLE1 = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "table1")
BASELINES = ["at_early_stop", "awp", "bot_trades", "fat", "free_at", "mart", "pgd_at", "trades"]


@pytest.mark.parametrize("name", BASELINES)
def test_table1_config_cites_a_source_for_every_value_unlike_mixacms(name):
    """configs/table1/cifar10_<name>.toml: each key whose value differs from the MixACM recipe (TrainConfig's
    defaults) carries a comment naming where it comes from."""
    from mixacm.config import load_config

    path = os.path.join(TABLE1, f"cifar10_{name}.toml")
    cfg, default = load_config(path), TrainConfig()
    for line in open(path):
        if "=" not in line or line.lstrip().startswith("#"):
            continue
        key = line.split("=", 1)[0].strip()
        if key in ("model", "dataset", "data_fraction", "method"):
            continue
        if getattr(cfg, key) != getattr(default, key):
            assert "#" in line, f"{path}: {key} differs from the MixACM recipe without a source: {line.strip()}"


# first 0-based epoch at each lower lr, from each code's schedule (1-based `epoch >= E` -> E - 1)
LR_SWITCH_EPOCHS = {"trades": [74], "mart": [74, 89], "awp": [99, 149], "fat": [74], "bot_trades": [99, 104]}


@pytest.mark.parametrize("name", sorted(LR_SWITCH_EPOCHS))
@pytest.mark.parametrize("steps_per_epoch", [382, 390, 391])
def test_table1_schedules_switch_at_the_codes_epochs(name, steps_per_epoch):
    from mixacm.config import load_config
    from mixacm.train import _lr_factor

    cfg = load_config(os.path.join(TABLE1, f"cifar10_{name}.toml"))
    factor = _lr_factor(cfg, steps_per_epoch * cfg.free_replays)
    for e in range(cfg.epochs):
        first = e * steps_per_epoch
        assert factor(first) == pytest.approx(0.1 ** sum(s <= e for s in LR_SWITCH_EPOCHS[name])), (name, e)
        assert factor(first + steps_per_epoch - 1) == factor(first)


def test_step_based_schedules_switch_at_the_codes_steps():
    """Madry et al. and Free-AT count steps: lr / 10 at half and / 100 at three quarters of all (replay) steps."""
    from mixacm.config import load_config
    from mixacm.train import _lr_factor

    for name in ("pgd_at", "free_at"):
        cfg = load_config(os.path.join(TABLE1, f"cifar10_{name}.toml"))
        total = cfg.epochs * 390 * cfg.free_replays
        factor = _lr_factor(cfg, 390 * cfg.free_replays)
        for frac, lr in ((0.5, 0.1), (0.75, 0.01)):
            s = math.ceil(frac * total)
            assert factor(s - 1) == pytest.approx(lr * 10) and factor(s) == pytest.approx(lr)


@pytest.mark.parametrize("steps_per_epoch", [382, 390, 391])
def test_rice_schedule_is_read_one_step_ahead(steps_per_epoch):
    """locuslab/robust_overfitting train_cifar.py: iteration i of epoch e trains at lr_schedule(e + (i + 1) / n), the
    piecewise lr_max, / 10 from t / epochs >= 0.5, / 100 from 0.75 (lr_schedule, L248-255; the loop's lr line). The
    last iteration before each milestone epoch already takes the lower lr."""
    from mixacm.config import load_config
    from mixacm.train import _lr_factor

    cfg = load_config(os.path.join(TABLE1, "cifar10_at_early_stop.toml"))
    factor = _lr_factor(cfg, steps_per_epoch)

    def rice(t: float) -> float:  # written from the paper's code, in lr / lr_max
        return 1.0 if t / cfg.epochs < 0.5 else 0.1 if t / cfg.epochs < 0.75 else 0.01

    for e in range(cfg.epochs):
        for i in (0, 1, steps_per_epoch - 2, steps_per_epoch - 1):
            assert factor(e * steps_per_epoch + i) == pytest.approx(rice(e + (i + 1) / steps_per_epoch)), (e, i)
    assert factor(100 * steps_per_epoch - 1) == pytest.approx(0.1) and factor(100 * steps_per_epoch - 2) == 1.0


def test_madry_and_free_at_decay_only_the_conv_and_fc_kernels():
    """MadryLab/cifar10_challenge model.py _decay (and free_adv_train free_model.py): the loss adds weight_decay *
    sum(tf.nn.l2_loss(W)) = weight_decay * sum(||W||^2) / 2 over the variables named 'DW', the conv and fc kernels;
    batch-norm scales and shifts and the fc bias are not decayed. One plain-momentum step of the trainer's optimiser
    against that loss's gradient, in float64, on a network with batch norm."""
    from mixacm.config import load_config
    from mixacm.train import param_groups

    for name in ("pgd_at", "free_at"):
        cfg = load_config(os.path.join(TABLE1, f"cifar10_{name}.toml"))
        assert cfg.weight_decay_on == "conv_fc_weights" and cfg.weight_decay == 2e-4
        torch.manual_seed(0)
        net = build_model("wrn-10-1", num_classes=10).double()
        for m in net.modules():  # non-trivial batch-norm parameters, so decaying them would show
            if isinstance(m, nn.BatchNorm2d):
                nn.init.uniform_(m.weight, 0.5, 1.5)
                nn.init.uniform_(m.bias, -0.5, 0.5)
        ref = copy.deepcopy(net)
        x, y = torch.rand(8, 3, 32, 32, dtype=torch.float64), torch.randint(0, 10, (8,))
        opt = torch.optim.SGD(param_groups(cfg, [net]), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                              weight_decay=cfg.weight_decay)
        F.cross_entropy(net(x), y).backward()
        opt.step()
        kernels = [m.weight for m in ref.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        loss = F.cross_entropy(ref(x), y) + cfg.weight_decay * sum((w ** 2).sum() / 2 for w in kernels)
        loss.backward()
        with torch.no_grad():
            for p in ref.parameters():
                p -= cfg.lr * p.grad  # first momentum step: the velocity is the gradient
        for (n, a), (_, b) in zip(net.named_parameters(), ref.named_parameters()):
            assert torch.allclose(a, b, rtol=1e-12, atol=1e-15), (name, n)
        bn = [n for n, _ in net.named_parameters() if "bn" in n or n.endswith("bias")]
        assert bn and len(kernels) >= 5


def test_table1_recipes_stay_in_table1():
    """Free-AT's Table 2 (ImageNet) row keeps the ImageNet preset's optimiser and schedule."""
    from verification import specs

    t2 = [s["train"] for s in specs.all_specs() if s["table"] == "table2" and s["train"]
          and s["train"]["method"] == "free_at"]
    assert t2 and all(t.get("schedule", "cosine") == "cosine" and t["weight_decay"] == 5e-5 for t in t2)
