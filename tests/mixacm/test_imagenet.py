"""Streamed ImageNet-style data: a tiny ImageFolder tree (wnid folders, JPEGs) goes through ImageFiles + DataLoader
with DistributedSampler shards, never through the decode-everything ImageFolder loader; ResNet-50 trains two steps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import mixacm.data as D
from mixacm.batches import StreamedBatches
from mixacm.config import load_config
from mixacm.train import train

WNIDS = ("n01440764", "n01443537", "n01484850")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    from PIL import Image
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for k, wnid in enumerate(WNIDS):
            (root / split / wnid).mkdir(parents=True)
            for i in range(n):
                a = rng.integers(0, 256, (240 + 8 * i, 300, 3), dtype=np.uint8)  # sizes differ, like ImageNet
                a[..., k] = 255  # a class cue
                Image.fromarray(a).save(root / split / wnid / f"{wnid}_{i}.JPEG", quality=85)
    return root


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_names_classes_stats_and_env_root(tree, monkeypatch):
    assert "imagenet" in D.DATASETS
    assert D.num_classes("imagenet", tree) == 3
    monkeypatch.setenv("MIXACM_IMAGENET", str(tree))
    assert D.num_classes("imagenet") == 3
    assert D.dataset_stats("imagenet") == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert D.is_streamed("imagenet")
    monkeypatch.delenv("MIXACM_IMAGENET")
    with pytest.raises(FileNotFoundError, match="MIXACM_IMAGENET"):
        D.num_classes("imagenet")


def test_seeded_test_subset_decodes_only_those_images(tree, monkeypatch):
    from PIL import Image
    real, opened = Image.open, []

    def counting_open(f, *a, **k):
        opened.append(str(f))
        return real(f, *a, **k)

    monkeypatch.setattr(Image, "open", counting_open)
    x, y = D.load_split("imagenet", "test", tree, limit=4, seed=1)
    assert x.shape == (4, 3, 224, 224) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert len(opened) == 4 and all("/val/" in f for f in opened)  # test split = val/
    x2, y2 = D.load_split("imagenet", "test", tree, limit=4, seed=1)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    xs, ys = D.load_split("imagenet", "train", tree, limit_per_class=1)
    assert ys.tolist() == [0, 1, 2]


def test_sampler_shards_are_disjoint_and_cover_the_epoch(tree):
    _, items = D.scan_split("imagenet", "train", tree)
    ds = D.ImageFiles(items, D.image_transform(True), seed=0)
    srcs = [StreamedBatches(ds, global_batch=4, rank=r, world=2, seed=0, num_workers=0) for r in range(2)]
    assert srcs[0].local_batch == 2 and srcs[0].steps_per_epoch == len(items) // 4 == 3
    orders = []
    for epoch in (0, 1):
        shards = []
        for s in srcs:
            s.sampler.set_epoch(epoch)
            shards.append(list(s.sampler))
        assert not set(shards[0]) & set(shards[1])
        assert sorted(shards[0] + shards[1]) == list(range(len(items)))
        orders.append(shards[0])
    assert orders[0] != orders[1]  # set_epoch reshuffles
    ys = [yb for _, yb in srcs[0].epoch(0)]
    assert len(ys) == 3 and all(len(yb) == 2 for yb in ys)


def test_resnet50_trains_on_streamed_imagenet(tree, tmp_path, monkeypatch):
    def no_whole_decode(*a, **k):
        raise AssertionError("ImageNet must be streamed, never decoded whole")

    monkeypatch.setattr(D, "load_imagefolder", no_whole_decode)
    monkeypatch.setattr(D, "_decode", no_whole_decode)
    cfg = load_config(None, {"preset": "imagenet", "method": "natural", "data_root": str(tree), "batch_size": 4,
                             "epochs": 1, "max_steps_per_epoch": 2, "val_fraction": 0.25, "val_n": 3,
                             "eval_batch_size": 4, "progress": False, "num_workers": 1, "warmup_epochs": 0.0})
    assert cfg.dataset == "imagenet" and cfg.model == "resnet50"
    s = train(cfg, tmp_path / "r")
    assert s["n_train"] == 9 and s["n_val"] == 3 and s["steps_per_epoch"] == 2 and s["global_step"] == 2
    ck = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    assert ck["num_classes"] == 3 and ck["model"] == "resnet50"
    assert ck["model_state"]["net.fc.weight"].shape == (3, 2048)
    assert all(torch.isfinite(v).all() for v in ck["model_state"].values() if v.is_floating_point())


def test_large_imagefolder_is_streamed_small_one_in_memory(tree, monkeypatch):
    name = f"imagefolder:{tree}"
    assert not D.is_streamed(name)  # 12 small images: the in-memory path
    monkeypatch.setattr(D, "STREAM_BYTES", 1000)  # pretend the tree is larger than RAM allows
    assert D.is_streamed(name)
    assert not D.is_streamed("digits") and not D.is_streamed("cifar10")
    assert D.is_streamed(name, force=False) is False


def _float_transform(train: bool):
    """The loader's transform as it was before it shipped uint8: float32 made in the DataLoader worker."""
    from torchvision.transforms import v2
    ops = ([v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip()] if train
           else [v2.Resize(256, antialias=True), v2.CenterCrop(224)])
    return v2.Compose([v2.ToImage(), *ops, v2.ToDtype(torch.float32, scale=True), v2.ToPureTensor()])


@pytest.mark.parametrize("train_split", [True, False])
def test_loader_ships_uint8_and_the_device_gets_the_same_floats(tree, train_split):
    """Workers and pinned memory carry uint8 images (a quarter of float32's bytes); the batch that reaches
    the device is float32 in [0,1], equal bit for bit to what the float32 pipeline gave."""
    from mixacm.batches import eval_batches

    _, items = D.scan_split("imagenet", "train" if train_split else "test", tree)
    ds = D.ImageFiles(items, D.image_transform(train_split), seed=3)
    old = D.ImageFiles(items, _float_transform(train_split), seed=3)
    shipped, _ = next(iter(StreamedBatches(ds, global_batch=2, seed=0, num_workers=0).loader(0)))
    assert shipped.dtype == torch.uint8
    if train_split:
        src = StreamedBatches(ds, global_batch=2, seed=0, num_workers=0)
        order = list(src.sampler)
        xb, _ = next(iter(src.epoch(0)))
        want = torch.stack([old[i][0] for i in order[:2]])
    else:
        xb, _ = next(eval_batches({"val_set": ds}, 2, 2, torch.device("cpu")))
        want = torch.stack([old[i][0] for i in range(2)])
    assert xb.dtype == torch.float32 and torch.equal(xb, want)
    xt, _ = ds.tensors(range(2))  # tensors(): float32 as before (teacher gate, evaluation subsets)
    assert xt.dtype == torch.float32 and torch.equal(xt, torch.stack([old[i][0] for i in range(2)]))
