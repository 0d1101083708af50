"""Wrapper around the real AutoAttack package (``pyautoattack``, Croce & Hein 2020): standard version and its parts.

``AutoAttack.run_standard_evaluation(x, y)`` returns the tuple ``(x_adv, y_adv)``: x_adv holds the adversarial input
for every point some attack broke and the clean input elsewhere; y_adv the model's prediction on it (for points
misclassified from the start: the clean prediction). The robust accuracies and the package's sanity flags
(randomised / dynamic defence, probabilities instead of logits, too many target classes, zero gradients, Square
beating the white-box attacks) only go to the ``auto-attack`` logger, so we capture that logger's records.

Parts (Table 3 columns) run with ``version='custom', attacks=[part]`` and the standard version's settings
(1 restart for APGD, 9 target classes for APGD-T/FAB-T capped at K-1, 5000 Square queries), which is what
``run_standard_evaluation_individual`` of the standard version uses. The package's ``state_path`` resume is not used
(restoring a state there leaves ``y_adv`` unset); resumption is done per batch by :mod:`mixacm.evaluate`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from mixacm.attacks import AA_PARTS

STANDARD_PARTS = ("apgd-ce", "apgd-t", "fab-t", "square")  # version='standard', Linf


@dataclass
class AAResult:
    x_adv: Tensor
    y_adv: Tensor
    flags: list[str] = field(default_factory=list)  # the package's WARNING records (its sanity checks)
    log: list[str] = field(default_factory=list)  # its DEBUG/INFO records (per-attack robust accuracy, timing)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _configure(aa, parts: tuple[str, ...], n_classes: int, square_queries: int | None, n_iter: int | None,
               n_target_classes: int | None = None) -> None:
    """Standard-version settings for any subset of parts; target classes capped at K-1 for K < 10 (and at
    ``n_target_classes`` when given: rehearsals only)."""
    targets = max(1, min(9, n_classes - 1, n_target_classes or 9))
    if n_iter is not None:  # tests only; standard is 100 for APGD, APGD-T and FAB
        aa.fab.n_iter = n_iter
        for apgd in (aa.apgd, aa.apgd_targeted):  # APGD derives its step-size checkpoints from n_iter at init
            apgd.n_iter = apgd.n_iter_orig = n_iter
            apgd.n_iter_2 = max(int(0.22 * n_iter), 1)
            apgd.n_iter_min = max(int(0.06 * n_iter), 1)
            apgd.size_decr = max(int(0.03 * n_iter), 1)
    aa.apgd.n_restarts = 1
    aa.apgd_targeted.n_restarts = 1
    aa.apgd_targeted.n_target_classes = targets
    aa.fab.n_restarts = 1
    aa.fab.n_target_classes = targets
    aa.square.n_queries = 5000 if square_queries is None else square_queries


def run_autoattack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    parts: tuple[str, ...] | list[str] = (),
    seed: int = 0,
    device: str | torch.device = "cpu",
    batch_size: int = 250,
    square_queries: int | None = None,
    n_iter: int | None = None,
    n_target_classes: int | None = None,
) -> AAResult:
    """Run AutoAttack (parts=() -> standard: APGD-CE, APGD-T, FAB-T, Square) or the given parts, l-inf, on (x, y).

    square_queries, n_iter, n_target_classes: override the standard 5000 Square queries / 100 APGD and FAB
    iterations / 9 target classes (tests, benchmarks and rehearsals only; None keeps the standard settings).
    """
    from pyautoattack import AutoAttack, checks

    parts = tuple(parts)
    unknown = [p for p in parts if p not in AA_PARTS]
    if unknown:
        raise ValueError(f"unknown AutoAttack part(s) {unknown}; valid: {', '.join(AA_PARTS)}")
    with torch.no_grad():
        n_classes = int(model(x[:1].to(device)).shape[1])
    if parts:
        aa = AutoAttack(model, attacks=list(parts), device=device, eps=eps, norm="Linf", seed=seed, version="custom")
    else:
        aa = AutoAttack(model, device=device, eps=eps, norm="Linf", seed=seed, version="standard")
    _configure(aa, parts or STANDARD_PARTS, n_classes, square_queries, n_iter, n_target_classes)
    # The package counts autograd calls seen in a forward in a module-global dict it never resets, so one dynamic
    # model would flag every later model as dynamic: reset it before each run.
    for key in checks.funcs:
        checks.funcs[key] = 0

    logger = logging.getLogger("auto-attack")
    handler, old_level, old_propagate = _Capture(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        x_adv, y_adv = aa.run_standard_evaluation(x.to(device), y.to(device), batch_size=batch_size)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
    flags = [r.getMessage() for r in handler.records if r.levelno >= logging.WARNING]
    log = [r.getMessage() for r in handler.records if r.levelno < logging.WARNING]
    return AAResult(x_adv=x_adv.detach(), y_adv=y_adv.detach(), flags=flags, log=log)
