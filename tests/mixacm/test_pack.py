"""CIFAR-10 as one pack file of its JPEG bytes (the data a GPU machine without network trains on): the
pack decodes in memory to exactly the tensors the ImageFolder loader gives for the same files, the test split is a
seeded stratified subset named in the pack, and the trainer and evaluator read it by name ("cifar10-pack")."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import mixacm.data as D
from mixacm import normalization

CLASSES = ("airplane", "automobile", "bird")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    from PIL import Image
    root = tmp_path_factory.mktemp("jpeg")
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 5)):
        for k, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(a).save(root / split / name / f"{i:04d}.jpg", quality=75)
    return root


def test_pack_decodes_to_the_imagefolder_tensors(tree, tmp_path):
    path = D.write_pack(tree, tmp_path / "p.npz", test_per_class=2, seed=0)
    x, y = D.load_split("cifar10-pack", "train", path)
    xr, yr = D.load_imagefolder(tree, "train", use_cache=False)
    assert x.dtype == torch.float32 and torch.equal(x, xr) and torch.equal(y, yr)
    xt, yt = D.load_split("cifar10-pack", "test", path)
    assert len(yt) == 6 and torch.bincount(yt).tolist() == [2, 2, 2]  # stratified, seeded
    xa, ya = D.load_imagefolder(tree, "test", use_cache=False)
    meta = D.pack_meta(path)
    assert meta["classes"] == list(CLASSES) and meta["test_indices"] == sorted(meta["test_indices"])
    assert torch.equal(xt, xa[meta["test_indices"]]) and torch.equal(yt, ya[meta["test_indices"]])
    again = D.write_pack(tree, tmp_path / "q.npz", test_per_class=2, seed=0)
    assert D.pack_meta(again)["test_indices"] == meta["test_indices"]
    assert D.num_classes("cifar10-pack") == 10 and D.dataset_stats("cifar10-pack") == normalization.STATS["cifar10"]


def test_missing_pack_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m verification.device_pack"):
        D.load_split("cifar10-pack", "train", tmp_path / "absent.npz")
