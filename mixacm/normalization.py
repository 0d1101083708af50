"""Per-channel input statistics (mean, std) of each data set: the one table.

The models normalise inside (``mixacm.models``: inputs are images in [0,1], ``mean``/``std`` buffers of shape
(C, 1, 1)); the statistics they get come from here: ``mixacm.data.dataset_stats`` (the trainer's student),
``mixacm.teachers`` (RobustBench's teachers, whose normalisation is not in their checkpoints, and this package's
checkpoints of models that keep the statistics out of their state dict), and ``mixacm.models.common.default_stats``
(a model built without statistics). Stdlib only: every layer of the library can import it without a cycle.
"""
from __future__ import annotations

Stats = tuple[tuple[float, ...], tuple[float, ...]]  # (mean per channel, std per channel)

# CIFAR-10 as RobustBench's DMWideResNet uses it (Gowal et al. 2020 checkpoints); the JPEG copy and its pack are
# CIFAR-10's images, so they share its statistics.
_CIFAR10: Stats = ((0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616))

STATS: dict[str, Stats] = {
    "digits": ((0.305,), (0.376,)),  # measured on all 1797 images of scikit-learn's 8x8 digits
    "cifar10": _CIFAR10,
    "cifar10-jpeg": _CIFAR10,
    "cifar10-pack": _CIFAR10,
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

# Mean and std per channel of a model built for non-RGB input without statistics: x -> (x - 0.5) / 0.5 maps [0,1]
# to [-1,1]. It stands for no data set (digits' own are in STATS); the trainer always passes its data set's.
NEUTRAL = 0.5


def stats_for(dataset: str) -> Stats | None:
    """(mean, std) of a data set name of ``mixacm.data``; ImageFolder trees ("imagefolder:<path>") take CIFAR-10's;
    None for a name the table does not know."""
    if dataset.startswith("imagefolder:"):
        return STATS["cifar10"]
    return STATS.get(dataset)


def model_stats(dataset: str | None, in_channels: int) -> dict[str, tuple[float, ...]]:
    """``mean=``/``std=`` keywords of ``build_model`` for a model of ``dataset``'s images: the table's statistics when
    the data set is known and has ``in_channels`` channels, else {} (the model's default, ``default_stats``)."""
    stats = stats_for(dataset) if dataset else None
    if stats is None or len(stats[0]) != in_channels:
        return {}
    return {"mean": stats[0], "std": stats[1]}


__all__ = ["STATS", "NEUTRAL", "Stats", "stats_for", "model_stats"]
