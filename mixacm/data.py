"""Data sets as in-memory tensors, seeded subsets and batch-level augmentation.

    load_split(name, split, root=None, *, limit_per_class=None) -> (x float32 (N,C,H,W) in [0,1], y int64 (N,))
    names:
      "digits"           scikit-learn's bundled 8x8 digits (embedded default, no files needed), (N,1,8,8);
                         no official split exists: fixed stratified 80/20 train/test split, seed 0.
      "cifar10", "cifar100"   torchvision; downloads only when MIXACM_ALLOW_DOWNLOAD=1 (root: argument,
                         $MIXACM_DATA_ROOT, or ~/.cache/mixacm/data).
      "cifar10-jpeg"     ImageFolder copy of CIFAR-10 (root: argument, $MIXACM_CIFAR10_JPEG, or
                         ../shared/data/cifar10-jpeg next to the repo / the working directory).
      "cifar10-pack"     the same JPEG files' bytes in one .npz (``write_pack``; root: the file, or
                         $MIXACM_CIFAR10_PACK): all training images and a seeded stratified test subset, decoded in
                         memory; for machines that get one file (verification.device_check).
      "imagefolder:<path>"  any ImageFolder tree <path>/<split>/<class>/<image> with equal-sized images.
      "imagenet"         ImageFolder tree at root / $MIXACM_IMAGENET with train/<wnid>/*.JPEG and val/<wnid>/*.JPEG
                         (test split = val); classes = folder count; never decoded whole: training streams it
                         (ImageFiles + a DataLoader, mixacm.batches), load_split needs limit=n (seeded subset) or
                         limit_per_class, decoded with the test transform Resize(256)+CenterCrop(224).
    ImageFolder trees whose decoded float32 copy would exceed STREAM_BYTES are streamed by training too
    (``is_streamed``), with the ImageNet transforms.
    ImageFolder trees are decoded (PIL) once and cached as .npz in $MIXACM_CACHE or ~/.cache/mixacm, keyed
    by the folder path and the size/mtime of its "<split>.sha256" list (or of all files when absent);
    afterwards they stay in memory for the life of the process. Classes are sorted alphabetically
    (for CIFAR-10 this is the canonical label order).
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .normalization import stats_for  # per-channel (mean, std) of each data set: the one table
from .paths import resolve_cifar10_jpeg_root  # where the CIFAR-10 JPEG copy is looked for: the one definition

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
SPLITS = ("train", "test")
AUGMENTS = ("none", "crop_flip", "randaugment")
_MEMORY: dict[str, tuple[Tensor, Tensor]] = {}  # cache key -> (uint8 images (N,C,H,W), labels)

STREAM_BYTES = 4 * 2**30  # ImageFolder trees larger than this (decoded float32) are streamed, not held in RAM


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")


# ---------------------------------------------------------------- digits
def load_digits_split(split: str, root=None, *, limit_per_class: int | None = None) -> tuple[Tensor, Tensor]:
    from sklearn.datasets import load_digits

    _check_split(split)
    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)  # (1797, 8, 8) -> (N, 1, 8, 8) in [0,1]
    y = torch.from_numpy(d.target.astype(np.int64))
    tr, te = train_val_split(y, 0.2, seed=0)  # fixed split: digits has no official one
    idx = tr if split == "train" else te
    x, y = x[idx], y[idx]
    if limit_per_class is not None:
        keep = _first_per_class(y, limit_per_class)
        x, y = x[keep], y[keep]
    return x, y


# ---------------------------------------------------------------- torchvision CIFAR
def _tv_root(root) -> Path:
    return Path(root or os.environ.get("MIXACM_DATA_ROOT") or Path.home() / ".cache" / "mixacm" / "data")


def _load_torchvision(cls_name: str, split: str, root=None, *, limit_per_class: int | None = None):
    import torchvision

    _check_split(split)
    allow = os.environ.get("MIXACM_ALLOW_DOWNLOAD") == "1"
    r = _tv_root(root)
    try:
        ds = getattr(torchvision.datasets, cls_name)(str(r), train=split == "train", download=allow)
    except RuntimeError as e:
        raise FileNotFoundError(
            f"{cls_name} not found under {r} ({e}); set MIXACM_ALLOW_DOWNLOAD=1 to download it, point "
            f"root= or $MIXACM_DATA_ROOT at a copy, or use 'cifar10-jpeg' (local ImageFolder copy)") from None
    x = torch.from_numpy(np.asarray(ds.data)).permute(0, 3, 1, 2).contiguous()  # (N,32,32,3) -> (N,3,32,32) uint8
    y = torch.as_tensor(ds.targets, dtype=torch.int64)
    if limit_per_class is not None:
        keep = _first_per_class(y, limit_per_class)
        x, y = x[keep], y[keep]
    return x.float().div_(255.0), y


# ---------------------------------------------------------------- ImageFolder (decoded once, cached)
def cache_dir() -> Path:
    return Path(os.environ.get("MIXACM_CACHE") or Path.home() / ".cache" / "mixacm")


def _scan(split_dir: Path, limit_per_class: int | None) -> tuple[list[str], list[tuple[Path, int]]]:
    classes = sorted(d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise FileNotFoundError(f"no class folders in {split_dir}; expected {split_dir}/<class>/<image>")
    items: list[tuple[Path, int]] = []
    for k, c in enumerate(classes):
        files = sorted(f for f in (split_dir / c).iterdir() if f.suffix.lower() in IMG_EXTENSIONS)
        items.extend((f, k) for f in (files if limit_per_class is None else files[:limit_per_class]))
    return classes, items


def _cache_key(split_dir: Path, items: list[tuple[Path, int]], limit_per_class: int | None) -> str:
    h = hashlib.sha256()
    h.update(f"v1|{split_dir.resolve()}|{limit_per_class}|".encode())
    listing = split_dir.parent / f"{split_dir.name}.sha256"
    if listing.is_file():  # the copy's checksum list stands for its content
        st = listing.stat()
        h.update(f"{st.st_size}|{st.st_mtime_ns}|{len(items)}".encode())
    else:
        for f, k in items:
            st = f.stat()
            h.update(f"{f.relative_to(split_dir)}|{k}|{st.st_size}|{st.st_mtime_ns};".encode())
    return h.hexdigest()[:24]


def _decode(items: list[tuple[Path, int]], desc: str) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image
    from tqdm.auto import tqdm

    first = np.asarray(Image.open(items[0][0]).convert("RGB"))
    x = np.empty((len(items), *first.shape), dtype=np.uint8)  # (N, H, W, 3)
    y = np.empty(len(items), dtype=np.int64)
    for i, (f, k) in enumerate(tqdm(items, desc=desc, unit="img", mininterval=1.0, disable=len(items) < 200)):
        with Image.open(f) as im:
            a = np.asarray(im.convert("RGB"))
        if a.shape != first.shape:
            raise ValueError(f"{f} has shape {a.shape}, others {first.shape}; the in-memory ImageFolder loader "
                             "needs equal-sized images (resize the tree first)")
        x[i], y[i] = a, k
    return x, y


def load_imagefolder(root, split: str, *, limit_per_class: int | None = None, use_cache: bool = True
                     ) -> tuple[Tensor, Tensor]:
    """Decodes <root>/<split>/<class>/* once (disk cache + memory), returns float images in [0,1] and labels."""
    _check_split(split)
    split_dir = Path(root) / split
    if not split_dir.is_dir():
        raise FileNotFoundError(f"ImageFolder split not found: {split_dir} (expected {root}/{split}/<class>/<image>)")
    _, items = _scan(split_dir, limit_per_class)
    if not items:
        raise FileNotFoundError(f"no images ({', '.join(IMG_EXTENSIONS)}) under {split_dir}")
    key = _cache_key(split_dir, items, limit_per_class)
    if key not in _MEMORY:
        path = cache_dir() / f"imagefolder-{key}.npz"
        x = y = None
        if use_cache and path.is_file():
            try:
                with np.load(path) as z:
                    x, y = z["x"], z["y"]
            except (OSError, ValueError, KeyError):
                x = y = None  # corrupt cache: decode again
        if x is None:
            x, y = _decode(items, f"decoding {split_dir}")
            if use_cache:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
                np.savez(tmp, x=x, y=y)
                os.replace(tmp, path)  # atomic: a reader never sees a half-written cache
        _MEMORY[key] = (torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y))
    xu, yt = _MEMORY[key]
    return xu.float().div_(255.0), yt.clone()


def _cifar10_jpeg(split: str, root=None, *, limit_per_class: int | None = None):
    return load_imagefolder(resolve_cifar10_jpeg_root(root), split, limit_per_class=limit_per_class)


# ---------------------------------------------------------------- one pack file of JPEG bytes ("cifar10-pack")
PACK_FORMAT = "mixacm.pack/1"


def write_pack(root, out, *, test_per_class: int | None = 200, seed: int = 0) -> Path:
    """One uncompressed .npz of an ImageFolder tree's JPEG BYTES (not decoded): every training image and a seeded
    stratified subset of ``test_per_class`` test images per class (None: all), in the loader's order (classes
    sorted, files sorted). Per split: ``<split>_bytes`` (uint8, the files concatenated), ``<split>_offsets``
    (int64, N + 1), ``<split>_labels`` (int64); ``meta`` (JSON: format, classes, test indices, sources)."""
    import json
    root, out = Path(root), Path(out)
    arrays: dict[str, np.ndarray] = {}
    meta: dict = {"format": PACK_FORMAT, "source": str(root), "seed": seed, "test_per_class": test_per_class}
    for split in SPLITS:
        classes, items = _scan(root / split, None)
        meta["classes"] = classes
        if split == "test" and test_per_class is not None:
            y = torch.tensor([k for _, k in items])
            keep = torch.cat([p[:test_per_class] for p in _per_class_perm(y, seed)]).sort().values.tolist()
            meta["test_indices"] = keep
            items = [items[i] for i in keep]
        blobs = [f.read_bytes() for f, _ in items]
        arrays[f"{split}_bytes"] = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        arrays[f"{split}_offsets"] = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        arrays[f"{split}_labels"] = np.array([k for _, k in items], dtype=np.int64)
        meta[f"{split}_files"] = [str(f.relative_to(root)) for f, _ in items]
    meta.setdefault("test_indices", None)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, out)
    return out


def _pack_path(root) -> Path:
    src = root if root is not None else os.environ.get("MIXACM_CIFAR10_PACK")
    p = Path(src) if src else None
    if p is None or not p.is_file():
        raise FileNotFoundError(f"CIFAR-10 pack not found ({p or 'no path given'}); build it with python -m "
                                f"verification.device_pack (from ../shared/data/cifar10-jpeg) and pass its path as "
                                f"data_root or $MIXACM_CIFAR10_PACK")
    return p


def pack_meta(root=None) -> dict:
    import json
    with np.load(_pack_path(root)) as z:
        return json.loads(z["meta"].tobytes().decode())


def _decode_blobs(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 of the JPEGs data[offsets[i]:offsets[i+1]], decoded by PIL on a thread pool (the decoder
    releases the GIL)."""
    import io
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    def one(i: int) -> np.ndarray:
        with Image.open(io.BytesIO(data[offsets[i]:offsets[i + 1]].tobytes())) as im:
            return np.asarray(im.convert("RGB"))

    n = len(offsets) - 1
    first = one(0)
    x = np.empty((n, *first.shape), dtype=np.uint8)

    def fill(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            x[i] = one(i)

    step = 2048
    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
        list(pool.map(lambda lo: fill(lo, min(lo + step, n)), range(0, n, step)))
    return x


def _cifar10_pack(split: str, root=None, *, limit_per_class: int | None = None):
    """A pack of ``write_pack`` decoded in memory (kept for the life of the process), float images in [0,1]."""
    _check_split(split)
    path = _pack_path(root)
    st = path.stat()
    key = f"pack|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{split}"
    if key not in _MEMORY:
        with np.load(path) as z:
            x = _decode_blobs(z[f"{split}_bytes"], z[f"{split}_offsets"])
            y = z[f"{split}_labels"]
        _MEMORY[key] = (torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y))
    xu, yt = _MEMORY[key]
    if limit_per_class is not None:
        keep = _first_per_class(yt, limit_per_class)
        xu, yt = xu[keep], yt[keep]
    return xu.float().div_(255.0), yt.clone()


# ---------------------------------------------------------------- ImageNet / large ImageFolder trees (streamed)
def resolve_imagenet_root(root=None) -> Path:
    """root argument > $MIXACM_IMAGENET; the tree needs train/<wnid>/ and/or val/<wnid>/ folders."""
    src = root if root is not None else os.environ.get("MIXACM_IMAGENET")
    if not src:
        raise FileNotFoundError("ImageNet not found; set data_root=PATH or $MIXACM_IMAGENET=PATH (an ImageFolder tree "
                                "with train/<wnid>/*.JPEG and val/<wnid>/*.JPEG)")
    p = Path(src)
    if not ((p / "train").is_dir() or (p / "val").is_dir()):
        raise FileNotFoundError(f"ImageNet not found at {p}: expected {p}/train/<wnid>/*.JPEG and {p}/val/<wnid>/*.JPEG")
    return p


def split_dir(name: str, split: str, root=None) -> Path:
    """Folder of one split of an ImageFolder-style data set ("imagenet": test = val/)."""
    _check_split(split)
    if name == "imagenet":
        return resolve_imagenet_root(root) / ("train" if split == "train" else "val")
    if name.startswith("imagefolder:"):
        return Path(root or name.split(":", 1)[1]) / split
    if name == "cifar10-jpeg":
        return resolve_cifar10_jpeg_root(root) / split
    raise ValueError(f"dataset {name!r} is not an ImageFolder tree")


def scan_split(name: str, split: str, root=None) -> tuple[list[str], list[tuple[Path, int]]]:
    """(class names, [(file, label)]) of an ImageFolder split, without decoding anything."""
    d = split_dir(name, split, root)
    if not d.is_dir():
        raise FileNotFoundError(f"ImageFolder split not found: {d} (expected {d}/<class>/<image>)")
    classes, items = _scan(d, None)
    if not items:
        raise FileNotFoundError(f"no images ({', '.join(IMG_EXTENSIONS)}) under {d}")
    return classes, items


def is_streamed(name: str, root=None, *, force: bool | None = None) -> bool:
    """Whether training streams this data set through a DataLoader instead of holding it as tensors:
    always for "imagenet"; for ImageFolder trees when their decoded float32 copy would exceed STREAM_BYTES."""
    if force is not None:
        return force and (name == "imagenet" or name.startswith("imagefolder:") or name == "cifar10-jpeg")
    if name == "imagenet":
        return True
    if not name.startswith("imagefolder:"):
        return False
    from PIL import Image
    _, items = scan_split(name, "train", root)
    with Image.open(items[0][0]) as im:
        w, h = im.size
    return len(items) * h * w * 3 * 4 > STREAM_BYTES


def image_transform(train: bool, *, size: int = 224, resize: int = 256, augment: str = "crop_flip"):
    """ImageNet transforms (Supp. A.1) to uint8 (3, size, size) (``to_unit_float`` makes float32 in [0,1] of them
    on the device; the models normalise inside): train RandomResizedCrop(size) + RandomHorizontalFlip (+ RandAugment
    for augment="randaugment"; augment="none" uses the test transform), test Resize(resize) + CenterCrop(size).
    Every op runs on the decoded uint8 image, so shipping uint8 and converting later gives the same floats as
    converting in the worker (a quarter of the bytes through worker queues, pinned memory and the host-device copy)."""
    from torchvision.transforms import v2
    if train and augment != "none":
        ops = [v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()]
        if augment == "randaugment":
            ops.append(v2.RandAugment())
    else:
        ops = [v2.Resize(resize, antialias=True), v2.CenterCrop(size)]
    return v2.Compose([v2.ToImage(), *ops, v2.ToPureTensor()])


def to_unit_float(x: Tensor) -> Tensor:
    """uint8 images -> float32 in [0,1], as torchvision's ToDtype(float32, scale=True) computes it (x * (1/255));
    float input is returned as it is."""
    if x.dtype != torch.uint8:
        return x
    return x.to(torch.float32).mul_(1.0 / 255)


class ImageFiles(torch.utils.data.Dataset):
    """[(file, label)] decoded on access -> (uint8 (3,H,W), label) (``tensors()``: float32 in [0,1]). The random
    transform of item i is seeded by (seed, epoch, i): the same augmentation whatever the number of DataLoader
    workers or ranks."""

    def __init__(self, items: list[tuple[Path, int]], transform, *, seed: int = 0):
        self.items, self.transform, self.seed, self.epoch = list(items), transform, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        from PIL import Image
        f, k = self.items[i]
        with Image.open(f) as im:
            img = im.convert("RGB")
        with torch.random.fork_rng(devices=[]):  # torchvision draws from the global RNG
            torch.manual_seed((((self.seed * 1_000_003) + self.epoch) * 10_000_019 + i) % 2**63)
            x = self.transform(img)
        return x, k

    def tensors(self, indices=None) -> tuple[Tensor, Tensor]:
        idx = range(len(self)) if indices is None else [int(i) for i in indices]
        pairs = [self[i] for i in idx]
        if not pairs:
            return torch.empty(0, 3, 224, 224), torch.empty(0, dtype=torch.int64)
        return (to_unit_float(torch.stack([p[0] for p in pairs])),
                torch.tensor([p[1] for p in pairs], dtype=torch.int64))


def load_image_subset(name: str, split: str, root=None, *, limit: int | None = None,
                      limit_per_class: int | None = None, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Decode only a subset of a large ImageFolder split with the test transform: a seeded random subset of
    ``limit`` images (returned in file order) or the first ``limit_per_class`` images of every class."""
    _, items = scan_split(name, split, root)
    if limit_per_class is not None:
        counts: dict[int, int] = {}
        keep = []
        for i, (_, k) in enumerate(items):
            if counts.get(k, 0) < limit_per_class:
                counts[k] = counts.get(k, 0) + 1
                keep.append(i)
        items = [items[i] for i in keep]
    if limit is not None:
        g = torch.Generator().manual_seed(seed)
        pick = torch.randperm(len(items), generator=g)[:limit].sort().values
        items = [items[int(i)] for i in pick]
    elif limit_per_class is None and len(items) * 3 * 224 * 224 * 4 > STREAM_BYTES:
        raise ValueError(f"{name} {split}: {len(items)} images would need "
                         f"{len(items) * 3 * 224 * 224 * 4 / 2**30:.0f} GiB as tensors; pass limit=N (seeded subset)")
    return ImageFiles(items, image_transform(False)).tensors()


def load_imagenet(split: str, root=None, *, limit_per_class: int | None = None, limit: int | None = None,
                  seed: int = 0) -> tuple[Tensor, Tensor]:
    return load_image_subset("imagenet", split, root, limit=limit, limit_per_class=limit_per_class, seed=seed)


DATASETS: dict[str, Callable[..., tuple[Tensor, Tensor]]] = {
    "digits": load_digits_split,
    "cifar10": lambda split, root=None, **kw: _load_torchvision("CIFAR10", split, root, **kw),
    "cifar100": lambda split, root=None, **kw: _load_torchvision("CIFAR100", split, root, **kw),
    "cifar10-jpeg": _cifar10_jpeg,
    "cifar10-pack": _cifar10_pack,
    "imagefolder:<path>": load_imagefolder,
    "imagenet": load_imagenet,
}
_NUM_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100, "cifar10-jpeg": 10, "cifar10-pack": 10}


def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")


def num_classes(name: str, root=None) -> int:
    if name == "imagenet":  # folder count (1000 for the full tree)
        r = resolve_imagenet_root(root)
        return len(_scan(r / "train" if (r / "train").is_dir() else r / "val", 0)[0])
    if name.startswith("imagefolder:"):
        root = Path(name.split(":", 1)[1])
        split_dir = root / "train" if (root / "train").is_dir() else root / "test"
        if not split_dir.is_dir():
            raise FileNotFoundError(f"ImageFolder not found: {root} (expected {root}/train/<class>/...)")
        return len(_scan(split_dir, 0)[0])
    if name not in _NUM_CLASSES:
        raise _unknown(name)
    return _NUM_CLASSES[name]


def dataset_stats(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel to pass to build_model(mean=, std=), from mixacm.normalization's table; ImageFolder
    trees default to CIFAR-10's."""
    stats = stats_for(name)
    if stats is None:
        raise _unknown(name)
    return stats


def load_split(name: str, split: str, root=None, *, limit_per_class: int | None = None, limit: int | None = None,
               seed: int = 0) -> tuple[Tensor, Tensor]:
    """(x float32 (N,C,H,W) in [0,1], y int64 (N,)) of a named data set; see the module docstring.
    ``limit``: a seeded random subset of that many examples (for "imagenet" only those are decoded)."""
    if name == "imagenet":
        return load_imagenet(split, root, limit_per_class=limit_per_class, limit=limit, seed=seed)
    if limit is not None:
        x, y = load_split(name, split, root, limit_per_class=limit_per_class)
        pick = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:limit].sort().values
        return x[pick], y[pick]
    if name.startswith("imagefolder:"):
        return load_imagefolder(root or name.split(":", 1)[1], split, limit_per_class=limit_per_class)
    if name not in DATASETS or name == "imagefolder:<path>":
        raise _unknown(name)
    return DATASETS[name](split, root, limit_per_class=limit_per_class)


# ---------------------------------------------------------------- seeded subsets
def _first_per_class(y: Tensor, n: int) -> Tensor:
    keep = torch.cat([torch.nonzero(y == c).flatten()[:n] for c in torch.unique(y)])
    return keep.sort().values


def _per_class_perm(y: Tensor, seed: int) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for c in torch.unique(y.cpu()):
        idx = torch.nonzero(y.cpu() == c).flatten()
        out.append(idx[torch.randperm(len(idx), generator=g)])
    return out


def stratified_subset(y: Tensor, fraction: float, seed: int = 0) -> Tensor:
    """Sorted indices of a seeded subset keeping round(fraction * n_c) (at least 1) of each class (Fig. 3)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    parts = [p[: max(1, round(fraction * len(p)))] for p in _per_class_perm(y, seed)]
    return torch.cat(parts).sort().values


def train_val_split(y: Tensor, val_fraction: float, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Disjoint stratified (train_idx, val_idx), sorted; val takes round(val_fraction * n_c) of each class."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    tr, va = [], []
    for p in _per_class_perm(y, seed):
        k = round(val_fraction * len(p))
        va.append(p[:k])
        tr.append(p[k:])
    return torch.cat(tr).sort().values, torch.cat(va).sort().values


# ---------------------------------------------------------------- augmentation
def random_crop_flip(x: Tensor, padding: int = 4, generator: torch.Generator | None = None) -> Tensor:
    """Per-sample random crop of the original size from the zero-padded image (torchvision's RandomCrop
    default fill) followed by a random horizontal flip (Supp. A.1). (B, C, H, W) -> (B, C, H, W)."""
    b, c, h, w = x.shape
    xp = torch.nn.functional.pad(x, (padding,) * 4)  # (B, C, H+2p, W+2p), zeros
    wp = w + 2 * padding
    oy = torch.randint(0, 2 * padding + 1, (b,), generator=generator)  # drawn on the CPU
    ox = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    rows = oy[:, None] + torch.arange(h)  # (B, H)
    cols = ox[:, None] + torch.arange(w)  # (B, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # horizontal flip = reversed column order
    idx = (rows[:, :, None] * wp + cols[:, None, :]).view(b, 1, h * w).to(x.device)  # flat index into each plane
    return xp.flatten(2).gather(2, idx.expand(b, c, h * w)).view(b, c, h, w)  # one gather, already contiguous


# ---- batched RandAugment (torchvision.transforms.v2.RandAugment semantics, per-sample ops, any device)
# Op order and magnitude ranges as torchvision.transforms.v2.RandAugment._AUGMENTATION_SPACE; each op follows
# torchvision.transforms.v2.functional's float-image kernel (geometry: nearest, fill None = zeros).
RA_OPS = ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast",
          "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize")
_RA_GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")  # contiguous in RA_OPS (indices 1..5)
_RA_COLOR = RA_OPS[6:]


def _ra_magnitude_table(num_bins: int, magnitude: int, h: int, w: int) -> list[tuple[float, bool]]:
    """(magnitude, signed) per op of RA_OPS, computed exactly as torchvision's RandAugment does."""
    lin = lambda a, b: float(torch.linspace(a, b, num_bins)[magnitude])  # noqa: E731
    post = float((8 - (torch.arange(num_bins) / ((num_bins - 1) / 4))).round().int()[magnitude])
    return [(0.0, False), (lin(0.0, 0.3), True), (lin(0.0, 0.3), True), (lin(0.0, 150.0 / 331.0 * w), True),
            (lin(0.0, 150.0 / 331.0 * h), True), (lin(0.0, 30.0), True), (lin(0.0, 0.9), True),
            (lin(0.0, 0.9), True), (lin(0.0, 0.9), True), (lin(0.0, 0.9), True), (post, False), (lin(1.0, 0.0), False),
            (0.0, False), (0.0, False)]


def _inverse_affine(center: tuple[float, float], angle: float, translate: tuple[float, float],
                    shear: tuple[float, float]) -> list[float]:
    # torchvision.transforms.v2.functional._geometry._get_inverse_affine_matrix (scale 1, inverted), same arithmetic
    import math
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    cos_sy, tan_sx, rot_minus_sy = math.cos(sy), math.tan(sx), rot - sy
    a = math.cos(rot_minus_sy) / cos_sy
    b = -(a * tan_sx + math.sin(rot))
    c = math.sin(rot_minus_sy) / cos_sy
    d = math.cos(rot) - c * tan_sx
    m = [d / 1.0, -b / 1.0, 0.0, -c / 1.0, a / 1.0, 0.0]
    m[2] += cx - m[0] * (cx + tx) - m[1] * (cy + ty)
    m[5] += cy - m[3] * (cx + tx) - m[4] * (cy + ty)
    return m


def _ra_theta(op: str, mag: float, h: int, w: int) -> list[float]:
    """Inverse affine matrix (2x3, row-major) torchvision uses for geometric op ``op`` at signed magnitude ``mag``."""
    import math
    corner = (-0.5 * w, -0.5 * h)  # center=[0, 0] in pixels, relative to the image centre
    if op == "ShearX":
        return _inverse_affine(corner, 0.0, (0.0, 0.0), (math.degrees(math.atan(mag)), 0.0))
    if op == "ShearY":
        return _inverse_affine(corner, 0.0, (0.0, 0.0), (0.0, math.degrees(math.atan(mag))))
    if op == "TranslateX":
        return _inverse_affine((0.0, 0.0), 0.0, (float(int(mag)), 0.0), (0.0, 0.0))
    if op == "TranslateY":
        return _inverse_affine((0.0, 0.0), 0.0, (0.0, float(int(mag))), (0.0, 0.0))
    if op == "Rotate":  # F.rotate(angle) uses the affine matrix of -angle
        return _inverse_affine((0.0, 0.0), -(mag % 360), (0.0, 0.0), (0.0, 0.0))
    return [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


_RA_TABLES: dict[tuple[int, int, int, int], Tensor] = {}


def _ra_params(num_bins: int, magnitude: int, h: int, w: int) -> Tensor:
    """(len(RA_OPS), 2, 7) float64 CPU table: [signed magnitude, theta(6)] for sign index 0 (+) and 1 (-)."""
    key = (num_bins, magnitude, h, w)
    if key not in _RA_TABLES:
        rows = []
        for op, (m, signed) in zip(RA_OPS, _ra_magnitude_table(num_bins, magnitude, h, w)):
            rows.append([[s * m] + _ra_theta(op, s * m, h, w) for s in ((1.0, -1.0) if signed else (1.0, 1.0))])
        _RA_TABLES[key] = torch.tensor(rows, dtype=torch.float64)
    return _RA_TABLES[key]


def _blend(a: Tensor, b: Tensor, f: Tensor) -> Tensor:
    # torchvision _blend for float images: a * f + b * (1 - f), clamped to [0, 1]; f (n,1,1,1)
    return (a * f + b * (1.0 - f)).clamp_(0, 1)


def _gray(x: Tensor) -> Tensor:
    # torchvision _rgb_to_grayscale_image (float, one output channel): (n,3,H,W) -> (n,1,H,W)
    r, g, b = x.unbind(1)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(1)


def ra_affine(x: Tensor, theta: Tensor) -> Tensor:
    """Per-sample affine warp with torchvision's tensor-kernel conventions (torchvision _affine_grid +
    grid_sample, nearest, zero fill). x (n,C,H,W) float, theta (n,2,3) inverse matrices in centred pixels."""
    n, _, h, w = x.shape
    base = torch.empty(1, h, w, 3, dtype=x.dtype, device=x.device)
    base[..., 0].copy_(torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w, device=x.device))
    base[..., 1].copy_(torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h, device=x.device).unsqueeze_(-1))
    base[..., 2].fill_(1)
    scaled = theta.to(x.dtype).transpose(1, 2).div(torch.tensor([0.5 * w, 0.5 * h], dtype=x.dtype, device=x.device))
    grid = base.view(1, h * w, 3).expand(n, -1, -1).bmm(scaled).view(n, h, w, 2)
    return torch.nn.functional.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def ra_brightness(x: Tensor, f: Tensor) -> Tensor:
    return (x * f.view(-1, 1, 1, 1)).clamp_(0, 1)


def ra_color(x: Tensor, f: Tensor) -> Tensor:  # adjust_saturation
    if x.shape[1] == 1:
        return x
    return _blend(x, _gray(x), f.view(-1, 1, 1, 1))


def ra_contrast(x: Tensor, f: Tensor) -> Tensor:
    g = _gray(x) if x.shape[1] == 3 else x
    return _blend(x, g.mean(dim=(-3, -2, -1), keepdim=True), f.view(-1, 1, 1, 1))


def ra_sharpness(x: Tensor, f: Tensor) -> Tensor:
    n, c, h, w = x.shape
    if h <= 2 or w <= 2:
        return x
    a, b = 1.0 / 13.0, 5.0 / 13.0
    k = torch.tensor([[a, a, a], [a, b, a], [a, a, a]], dtype=x.dtype, device=x.device).expand(c, 1, 3, 3)
    blurred = torch.nn.functional.conv2d(x, k, groups=c)
    out = x.clone()
    view = out[..., 1:-1, 1:-1]
    view.add_(blurred.sub_(view).mul_(1.0 - f.view(-1, 1, 1, 1)))
    return out.clamp_(0, 1)


def ra_posterize(x: Tensor, bits: Tensor) -> Tensor:
    levels = torch.exp2(bits.round()).view(-1, 1, 1, 1).to(x.dtype)  # 1 << bits
    return x.mul(levels).floor_().clamp_(min=0).minimum(levels - 1).mul_(1.0 / levels)


def ra_solarize(x: Tensor, threshold: Tensor) -> Tensor:
    return torch.where(x >= threshold.view(-1, 1, 1, 1).to(x.dtype), 1.0 - x, x)


def ra_autocontrast(x: Tensor, _: Tensor | None = None) -> Tensor:
    lo = x.amin(dim=(-2, -1), keepdim=True)
    hi = x.amax(dim=(-2, -1), keepdim=True)
    eq = hi == lo
    scale = torch.where(eq, torch.ones_like(hi), hi - lo)
    lo = torch.where(eq, torch.zeros_like(lo), lo)
    return x.sub(lo).div_(scale).clamp_(0, 1)


def ra_equalize(x: Tensor, _: Tensor | None = None) -> Tensor:
    """torchvision's equalize (PIL's LUT scheme) per sample and channel, on the image quantised to uint8 levels
    the way torchvision converts float images (x * 255.999, truncated); returns floats k/255."""
    n, c, h, w = x.shape
    q = x.clamp(0, 1).mul(255.0 + 1.0 - 1e-3).to(torch.uint8).view(n * c, h * w).long()  # (N, HW) in 0..255
    hist = torch.zeros(n * c, 256, dtype=torch.int32, device=x.device)
    hist.scatter_add_(1, q, torch.ones(1, dtype=torch.int32, device=x.device).expand_as(q))
    cum = hist.cumsum(1)
    last = cum.argmax(1, keepdim=True)  # first bin reaching the total = the largest value present
    step = (h * w - hist.gather(1, last)).div(255, rounding_mode="floor")  # (N, 1)
    lut = (cum[:, :-1] + step // 2).div(step.clamp(min=1), rounding_mode="floor").clamp_(0, 255)
    lut = torch.cat([torch.zeros_like(lut[:, :1]), lut], dim=1)
    out = torch.where(step != 0, lut.gather(1, q), q)
    return out.view(n, c, h, w).to(x.dtype).mul_(1.0 / 255)


_RA_COLOR_FNS = {"Brightness": ra_brightness, "Color": ra_color, "Contrast": ra_contrast, "Sharpness": ra_sharpness,
                 "Posterize": ra_posterize, "Solarize": ra_solarize, "AutoContrast": ra_autocontrast,
                 "Equalize": ra_equalize}


def _ra_color_factor(op: str, m: Tensor) -> Tensor:
    # the scalar each colour kernel takes, from the signed magnitude m (torchvision's _apply_image_or_video_transform)
    if op in ("Brightness", "Color", "Contrast", "Sharpness"):
        return 1.0 + m
    return m  # Posterize bits, Solarize threshold (bound 1.0 * magnitude); unused by AutoContrast/Equalize


def randaugment_draw(b: int, num_ops: int = 2, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The random choices of ``randaugment`` for a batch of b: (op indices into RA_OPS, negate flags), each
    (num_ops, b) int64 on the CPU; a flag only matters for signed ops (torchvision negates when rand <= 0.5)."""
    ops = torch.randint(0, len(RA_OPS), (num_ops, b), generator=generator)
    neg = (torch.rand(num_ops, b, generator=generator) <= 0.5).long()
    return ops, neg


def randaugment(x: Tensor, generator: torch.Generator | None = None, *, num_ops: int = 2, magnitude: int = 9,
                num_magnitude_bins: int = 31) -> Tensor:
    """Batched RandAugment with per-sample randomness on float images in [0,1], (B,C,H,W), on x's device.

    Same definition as torchvision.transforms.v2.RandAugment (defaults num_ops=2, magnitude=9, 31 bins; the 14 ops
    and magnitude ranges of RA_OPS; nearest interpolation, zero fill): every sample draws, for each of ``num_ops``
    rounds, its own op (uniform over RA_OPS) and sign (- with probability 1/2 for signed ops). The ops follow
    torchvision.transforms.v2.functional's float-image kernels. Random numbers come from ``generator`` on the CPU
    and are moved to x.device; the batch is processed op-group by op-group (no loop over samples) with one
    batched grid_sample per round for the five geometric ops.
    """
    if x.dim() != 4:
        raise ValueError(f"randaugment expects (B, C, H, W), got shape {tuple(x.shape)}")
    b, _, h, w = x.shape
    if b == 0 or num_ops == 0:
        return x
    dev, dtype = x.device, x.dtype
    table = _ra_params(num_magnitude_bins, magnitude, h, w)  # (14, 2, 7)
    ops, neg = randaugment_draw(b, num_ops, generator)
    perm = torch.argsort(ops, dim=1, stable=True)  # per round: samples grouped by op
    inv = torch.argsort(perm, dim=1)
    counts = torch.stack([torch.bincount(r, minlength=len(RA_OPS)) for r in ops]).tolist()  # CPU: no device sync
    params = table[ops.gather(1, perm), neg.gather(1, perm)].float()  # (num_ops, B, 7) in grouped order
    params, perm_d, inv_d = params.to(dev), perm.to(dev), inv.to(dev)  # a few small host->device copies
    cur = x.detach().float() if dtype not in (torch.float32, torch.float64) else x.detach()
    for r in range(num_ops):
        xs = cur.index_select(0, perm_d[r])  # grouped by op
        bounds = [0]
        for cnt in counts[r]:
            bounds.append(bounds[-1] + cnt)
        parts = []
        if bounds[1] > 0:  # Identity
            parts.append(xs[:bounds[1]])
        s, e = bounds[1], bounds[1 + len(_RA_GEOMETRIC)]
        if e > s:  # ShearX/Y, TranslateX/Y, Rotate: one batched warp
            parts.append(ra_affine(xs[s:e], params[r, s:e, 1:].view(-1, 2, 3)))
        for op in _RA_COLOR:
            k = RA_OPS.index(op)
            s, e = bounds[k], bounds[k + 1]
            if e > s:
                parts.append(_RA_COLOR_FNS[op](xs[s:e], _ra_color_factor(op, params[r, s:e, 0]).to(cur.dtype)))
        cur = torch.cat(parts).index_select(0, inv_d[r])  # back to the original sample order
    return cur.to(dtype)


def augment(x: Tensor, kind: str = "crop_flip", generator: torch.Generator | None = None, *,
            padding: int = 4) -> Tensor:
    """Batch-level training augmentation on float images in [0,1]: "none", "crop_flip" (random crop with
    ``padding`` zero pixels + horizontal flip), or "randaugment" (RandAugment then crop_flip, Table 2 "+RA").
    Runs on x's device with per-sample randomness drawn from the CPU ``generator`` (no loop over samples)."""
    if kind == "none":
        return x
    if kind == "crop_flip":
        return random_crop_flip(x, padding, generator)
    if kind == "randaugment":
        return random_crop_flip(randaugment(x, generator), padding, generator)
    raise ValueError(f"unknown augmentation {kind!r}; valid: {', '.join(AUGMENTS)}")
