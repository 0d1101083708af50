"""The evaluator on an accelerator: attacks run with the model's parameters frozen (no weight gradients:
FAB's per-class backward passes were costing 22F instead of 12F per iteration), channels_last inputs and weights, and
a larger physical batch on CUDA. None of it changes a result: the random starts are drawn per logical block of
``batch_size`` images from that block's own seed, so the masks are the same whatever the physical batch or layout.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from mixacm.evaluate import evaluate

AA_FAST = {"square_queries": 30, "n_iter": 5}
ATTACKS = ["fgsm", "pgd5", "pgd3x2", "cw10", "apgd-ce", "fab", "square"]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def conv_model(seed: int = 0) -> nn.Module:
    """A small conv net with BatchNorm (eval mode): convolutions see the memory format."""
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    with torch.no_grad():
        m[1].running_mean.uniform_(-0.1, 0.1)
        m[1].running_var.uniform_(0.5, 1.5)
        m[7].weight.mul_(20)
    return m.eval()


def conv_data(model: nn.Module, n: int = 40, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 8, 8, generator=g)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[:3] = (y[:3] + 1) % 10  # a few clean errors
    return x, y


def masks(res: dict) -> dict[str, list[int]]:
    out = {"clean": res["clean"]["correct_mask"], "worst": res["worst_case"]["robust_mask"]}
    out.update({k: a["robust_mask"] for k, a in res["attacks"].items()})
    return out


def test_attacks_run_with_parameters_frozen_and_their_flags_restored():
    model = conv_model()
    x, y = conv_data(model)
    model[7].bias.requires_grad_(False)  # a caller's own frozen parameter stays frozen
    before = {n: p.requires_grad for n, p in model.named_parameters()}
    seen: list[bool] = []

    def record(_module, inputs):
        if torch.is_grad_enabled() and inputs[0].requires_grad:  # an attack's forward (input gradient wanted)
            seen.append(any(p.requires_grad for p in model.parameters()))

    h = model.register_forward_pre_hook(record)
    try:
        evaluate(model, x, y, attacks=ATTACKS, eps=8 / 255, batch_size=16, progress=False, aa_options=AA_FAST)
    finally:
        h.remove()
    assert seen, "no attack forward was seen"
    assert not any(seen), f"{sum(seen)} of {len(seen)} attack forwards ran with parameters requiring grad"
    assert {n: p.requires_grad for n, p in model.named_parameters()} == before


def test_channels_last_and_a_larger_physical_batch_leave_every_mask_unchanged():
    """The CPU default (contiguous, physical batch = logical batch) against channels_last with every logical block
    of the evaluation in one physical batch: same masks for every attack (PGD with restarts included), and the
    attacks really ran in one batch and in channels_last."""
    model = conv_model()
    x, y = conv_data(model)
    kw = dict(attacks=ATTACKS, eps=8 / 255, batch_size=16, progress=False, aa_options=AA_FAST)
    ref = evaluate(model, x, y, **kw)

    sizes, layouts = [], []

    def record(module, inputs):
        if isinstance(module, nn.Conv2d) and torch.is_grad_enabled() and inputs[0].requires_grad:
            sizes.append(len(inputs[0]))
            layouts.append(inputs[0].is_contiguous(memory_format=torch.channels_last))

    hooks = [m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        new = evaluate(model, x, y, channels_last=True, attack_batch_size=64, **kw)
    finally:
        for h in hooks:
            h.remove()
    assert masks(new) == masks(ref)
    assert max(sizes) > 16, f"attack batches of at most {max(sizes)} images: the logical blocks were not merged"
    assert all(layouts), "a convolution saw a non-channels_last input during an attack"
    assert new["config"]["batch_size"] == ref["config"]["batch_size"] == 16  # the logical block, as recorded
    assert not model[0].weight.is_contiguous(memory_format=torch.channels_last)  # the model's layout restored


def test_physical_batch_is_larger_on_cuda_and_the_logical_block_on_cpu():
    from mixacm.evaluate import default_attack_batch

    assert default_attack_batch(torch.device("cpu"), 128) == 128
    assert default_attack_batch(torch.device("cuda"), 128) >= 512
    assert default_attack_batch(torch.device("cuda"), 128) % 128 == 0


def test_resumed_blocks_are_not_recomputed_in_a_merged_batch(tmp_path):
    """State is still kept per logical block: a rerun with another physical batch resumes every block."""
    model = conv_model()
    x, y = conv_data(model)
    kw = dict(attacks=["pgd5"], eps=8 / 255, batch_size=16, progress=False, state_dir=tmp_path)
    first = evaluate(model, x, y, attack_batch_size=16, **kw)
    again = evaluate(model, x, y, attack_batch_size=64, **kw)
    assert again["attacks"]["pgd5"]["batches_resumed"] == 3 and masks(again) == masks(first)
