"""Data sets, seeded subsets and batch augmentation (mixacm.data)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from mixacm import data as D
from mixacm.paths import default_cifar10_jpeg_candidates
from mixacm.data import (DATASETS, augment, load_split, num_classes, random_crop_flip, stratified_subset,
                         train_val_split)

CIFAR_JPEG = Path(os.environ.get("MIXACM_CIFAR10_JPEG") or default_cifar10_jpeg_candidates()[0])
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setenv("MIXACM_CACHE", str(tmp_path / "cache"))
    D._MEMORY.clear()


# ---------------------------------------------------------------- digits
def test_digits_split():
    xtr, ytr = load_split("digits", "train")
    xte, yte = load_split("digits", "test")
    assert xtr.shape[1:] == (1, 8, 8) and xtr.dtype == torch.float32 and ytr.dtype == torch.int64
    assert len(xtr) + len(xte) == 1797 and abs(len(xte) / 1797 - 0.2) < 0.01
    assert xtr.min() >= 0 and xtr.max() == 1.0
    assert torch.bincount(yte, minlength=10).min() >= 30  # stratified
    # fixed split: same on every call, and train/test images are disjoint rows of the 1797
    from sklearn.datasets import load_digits

    allx = torch.from_numpy(load_digits().images.reshape(1797, -1) / 16.0).float()
    tr_rows = {tuple(r) for r in xtr.view(len(xtr), -1).tolist()}
    te_rows = {tuple(r) for r in xte.view(len(xte), -1).tolist()}
    assert len(tr_rows | te_rows) == len({tuple(r) for r in allx.tolist()})
    assert torch.equal(load_split("digits", "test")[0], xte)
    assert num_classes("digits") == 10


def test_unknown_names_and_splits():
    with pytest.raises(ValueError, match="valid: digits, cifar10"):
        load_split("mnist", "train")
    with pytest.raises(ValueError, match="valid: train, test"):
        load_split("digits", "val")
    with pytest.raises(ValueError, match="valid: digits"):
        num_classes("svhn")
    assert set(DATASETS) >= {"digits", "cifar10", "cifar100", "cifar10-jpeg"}


def test_torchvision_without_download_permission(tmp_path, monkeypatch):
    monkeypatch.delenv("MIXACM_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(FileNotFoundError, match="MIXACM_ALLOW_DOWNLOAD=1"):
        load_split("cifar10", "train", root=tmp_path / "nothing")


# ---------------------------------------------------------------- ImageFolder
def _make_folder(root: Path, classes=("zebra", "ant", "moth"), per_class=3, size=(5, 4)) -> dict:
    from PIL import Image

    pixels = {}
    for k, c in enumerate(sorted(classes)):
        for split in ("train", "test"):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                arr = np.full((size[1], size[0], 3), 0, np.uint8)
                arr[..., 0] = 10 * k
                arr[..., 1] = 20 * i
                arr[0, 0, 2] = 255
                Image.fromarray(arr).save(root / split / c / f"{i:04d}.png")  # lossless
                pixels[(split, k, i)] = arr
    return pixels


def test_tiny_imagefolder_decode_cache_and_order(tmp_path):
    pixels = _make_folder(tmp_path / "tiny")
    x, y = load_split(f"imagefolder:{tmp_path / 'tiny'}", "train")
    assert x.shape == (9, 3, 4, 5) and y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # ant, moth, zebra
    for n in range(9):
        expect = torch.from_numpy(pixels[("train", n // 3, n % 3)]).permute(2, 0, 1).float() / 255
        assert torch.equal(x[n], expect)
    assert num_classes(f"imagefolder:{tmp_path / 'tiny'}") == 3
    cached = list((tmp_path / "cache").glob("imagefolder-*.npz"))
    assert len(cached) == 1
    # from memory: same values; from disk after the memory is cleared: still the same
    x2, _ = load_split(f"imagefolder:{tmp_path / 'tiny'}", "train")
    D._MEMORY.clear()
    x3, _ = load_split(f"imagefolder:{tmp_path / 'tiny'}", "train")
    assert torch.equal(x, x2) and torch.equal(x, x3)
    x4, y4 = load_split(f"imagefolder:{tmp_path / 'tiny'}", "test", limit_per_class=1)
    assert y4.tolist() == [0, 1, 2]


def test_imagefolder_cache_invalidated_when_files_change(tmp_path):
    from PIL import Image

    _make_folder(tmp_path / "t")
    x, _ = load_split(f"imagefolder:{tmp_path / 't'}", "train")
    Image.fromarray(np.full((4, 5, 3), 200, np.uint8)).save(tmp_path / "t" / "train" / "ant" / "0000.png")
    os.utime(tmp_path / "t" / "train" / "ant" / "0000.png", ns=(1, 10**18))
    x2, _ = load_split(f"imagefolder:{tmp_path / 't'}", "train")
    assert (x2[0] == 200 / 255).all() and not torch.equal(x, x2)


def test_missing_folders_give_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXACM_CIFAR10_JPEG", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="MIXACM_CIFAR10_JPEG") as e:
        load_split("cifar10-jpeg", "train")
    assert str(tmp_path / "nope") in str(e.value)
    with pytest.raises(FileNotFoundError, match="expected"):
        load_split(f"imagefolder:{tmp_path / 'nope'}", "train")


def test_mixed_sizes_rejected(tmp_path):
    from PIL import Image

    _make_folder(tmp_path / "m")
    Image.fromarray(np.zeros((7, 7, 3), np.uint8)).save(tmp_path / "m" / "train" / "zebra" / "0009.png")
    with pytest.raises(ValueError, match="equal-sized"):
        load_split(f"imagefolder:{tmp_path / 'm'}", "train")


@pytest.mark.skipif(not (CIFAR_JPEG / "test").is_dir(), reason=f"no CIFAR-10 JPEG copy at {CIFAR_JPEG}")
def test_cifar10_jpeg_slice(monkeypatch):
    monkeypatch.setenv("MIXACM_CIFAR10_JPEG", str(CIFAR_JPEG))
    x, y = load_split("cifar10-jpeg", "test", limit_per_class=4)
    assert x.shape == (40, 3, 32, 32) and x.dtype == torch.float32
    assert torch.bincount(y).tolist() == [4] * 10 and y.tolist() == sorted(y.tolist())
    assert sorted(p.name for p in (CIFAR_JPEG / "test").iterdir() if p.is_dir()) == CIFAR10_CLASSES
    assert 0 <= x.min() and x.max() <= 1 and x.std() > 0.1  # real images, not blanks
    from PIL import Image

    ref = np.array(Image.open(CIFAR_JPEG / "test" / "bird" / "0002.jpg").convert("RGB"))
    assert torch.equal(x[2 * 4 + 2], torch.from_numpy(ref).permute(2, 0, 1).float() / 255)
    assert num_classes("cifar10-jpeg") == 10


# ---------------------------------------------------------------- subsets
def test_stratified_subset_and_split():
    y = torch.arange(10).repeat_interleave(torch.tensor([50, 40, 30, 20, 10, 50, 40, 30, 20, 10]))
    idx = stratified_subset(y, 0.3, seed=1)
    counts = torch.bincount(y[idx], minlength=10)
    assert counts.tolist() == [15, 12, 9, 6, 3, 15, 12, 9, 6, 3]
    assert torch.equal(idx, stratified_subset(y, 0.3, seed=1)) and not torch.equal(idx, stratified_subset(y, 0.3, 2))
    assert len(set(idx.tolist())) == len(idx)
    tr, va = train_val_split(y, 0.1, seed=0)
    assert len(set(tr.tolist()) & set(va.tolist())) == 0 and len(tr) + len(va) == len(y)
    assert torch.bincount(y[va], minlength=10).tolist() == [5, 4, 3, 2, 1, 5, 4, 3, 2, 1]
    with pytest.raises(ValueError):
        stratified_subset(y, 0.0, 0)


# ---------------------------------------------------------------- augmentation
def test_crop_flip_is_a_window_of_the_padded_image():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 8, 8)
    out = random_crop_flip(x, padding=2, generator=g)
    assert out.shape == x.shape
    xp = torch.nn.functional.pad(x, (2,) * 4)
    flips = 0
    for b in range(16):
        found = None
        for oy in range(5):
            for ox in range(5):
                win = xp[b, :, oy:oy + 8, ox:ox + 8]
                if torch.equal(out[b], win):
                    found = "plain"
                elif torch.equal(out[b], win.flip(-1)):
                    found = "flip"
        assert found is not None, f"sample {b} is no (flipped) window of the zero-padded image"
        flips += found == "flip"
    assert 0 < flips < 16


def test_augment_determinism_and_kinds():
    x = torch.rand(6, 3, 32, 32)
    a = augment(x, "crop_flip", torch.Generator().manual_seed(5))
    b = augment(x, "crop_flip", torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert augment(x, "none") is x
    r1 = augment(x, "randaugment", torch.Generator().manual_seed(1))
    r2 = augment(x, "randaugment", torch.Generator().manual_seed(1))
    assert r1.shape == x.shape and r1.dtype == x.dtype and torch.equal(r1, r2)
    assert 0 <= r1.min() and r1.max() <= 1
    with pytest.raises(ValueError, match="valid: none, crop_flip, randaugment"):
        augment(x, "cutout")
