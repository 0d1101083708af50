"""Per-image 0/1 results (clean correctness, robustness under an attack) stored compactly: bit-packed, base64.

One evaluation of 10,000 images keeps each mask in 1,668 characters instead of ~40 kB of JSON integers, so every
recorded evaluation can keep them and a comparison of two models on the same images can be decided paired.
"""
from __future__ import annotations

import base64
import hashlib
from typing import Iterable

import numpy as np


def pack(mask: Iterable[int] | np.ndarray) -> str:
    """0/1 values (any iterable, a bool array, a torch tensor's ``tolist()``) -> base64 of their bits (big-endian
    within each byte, numpy's ``packbits`` order, zero-padded to a whole byte)."""
    bits = np.asarray(list(mask) if not isinstance(mask, np.ndarray) else mask).astype(bool).ravel()
    return base64.b64encode(np.packbits(bits).tobytes()).decode("ascii")


def unpack(packed: str, n: int) -> np.ndarray:
    """The ``n`` booleans that ``pack`` encoded; a length that does not fit the string is an error."""
    raw = np.frombuffer(base64.b64decode(packed.encode("ascii"), validate=True), dtype=np.uint8)
    if not (len(raw) * 8 - 7 <= n <= len(raw) * 8) and not (n == 0 and len(raw) == 0):
        raise ValueError(f"a packed mask of {len(raw)} bytes holds {len(raw) * 8 - 7}-{len(raw) * 8} values, not {n}")
    return np.unpackbits(raw)[:n].astype(bool)


def indices_sha256(indices: Iterable[int]) -> str:
    """Fingerprint of an evaluation's test images (their int64 indices in order): two masks are paired only when
    their fingerprints match."""
    return hashlib.sha256(np.asarray(list(indices), dtype=np.int64).tobytes()).hexdigest()
