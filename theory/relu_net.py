"""Small fully connected ReLU networks in numpy float64: f(x) = W_L relu(... relu(W_1 x + b_1) ...) + b_L.

The object of Theorem 4.2 for networks (Supp. B.2, last theorem): f_theta(x) = a^T sigma(W_{N-1} ... sigma(W_1 x)),
bias-free so that f(x) = grad f(x)^T x; biases are optional here to show what that assumption buys.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ReluNet:
    weights: list[np.ndarray]  # W_l: (n_l, n_{l-1}); the last one is the output layer (n_out, n_{L-1})
    biases: list[np.ndarray] | None = None  # b_l: (n_l,), or None for a bias-free (positively homogeneous) net

    def __post_init__(self) -> None:
        self.weights = [np.asarray(w, dtype=np.float64) for w in self.weights]
        if self.biases is not None:
            self.biases = [np.asarray(b, dtype=np.float64) for b in self.biases]
            if len(self.biases) != len(self.weights):
                raise ValueError(f"need one bias per layer: {len(self.weights)} weights, {len(self.biases)} biases")
        for a, b in zip(self.weights[:-1], self.weights[1:]):
            if b.shape[1] != a.shape[0]:
                raise ValueError(f"layer shapes do not chain: {a.shape} then {b.shape}")

    @property
    def sizes(self) -> list[int]:
        return [self.weights[0].shape[1]] + [w.shape[0] for w in self.weights]

    @property
    def has_bias(self) -> bool:
        return self.biases is not None and any(np.any(b != 0) for b in self.biases)

    def bias(self, l: int) -> np.ndarray:
        return np.zeros(self.weights[l].shape[0]) if self.biases is None else self.biases[l]

    def preacts(self, x: np.ndarray) -> list[np.ndarray]:
        """Pre-activations of every hidden layer and the output: (B, d) -> [(B, n_1), ..., (B, n_out)]."""
        h = np.atleast_2d(np.asarray(x, dtype=np.float64))
        out = []
        for l, w in enumerate(self.weights):
            z = h @ w.T + self.bias(l)
            out.append(z)
            h = np.maximum(z, 0.0)
        return out

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(B, d) -> (B, n_out); a single x of shape (d,) gives (n_out,)."""
        x = np.asarray(x, dtype=np.float64)
        z = self.preacts(x)[-1]
        return z[0] if x.ndim == 1 else z

    def grad(self, x: np.ndarray, out: int = 0) -> np.ndarray:
        """Gradient of output `out` at x (d,), with relu'(0) = 0 (the a.e. gradient; exact off the kinks)."""
        zs = self.preacts(x)
        g = self.weights[-1][out].copy()  # (n_{L-1},)
        for l in range(len(self.weights) - 2, -1, -1):
            g = (g * (zs[l][0] > 0)) @ self.weights[l]
        return g

    def scaled(self, s: float) -> "ReluNet":
        """Output layer scaled by s (for a bias-free net this is f -> s f: the 'norm of theta' direction)."""
        w = [x.copy() for x in self.weights]
        w[-1] = w[-1] * s
        b = None if self.biases is None else [x.copy() for x in self.biases]
        if b is not None:
            b[-1] = b[-1] * s
        return ReluNet(w, b)

    def to_dict(self) -> dict:
        return {"weights": [w.tolist() for w in self.weights],
                "biases": None if self.biases is None else [b.tolist() for b in self.biases]}

    @staticmethod
    def from_dict(d: dict) -> "ReluNet":
        return ReluNet([np.array(w) for w in d["weights"]],
                       None if d.get("biases") is None else [np.array(b) for b in d["biases"]])

    @staticmethod
    def random(sizes: list[int], rng: np.random.Generator, bias: bool = False, bias_scale: float = 0.5) -> "ReluNet":
        """He-initialised net with layer sizes [d, n_1, ..., n_out]."""
        ws = [rng.normal(0, np.sqrt(2.0 / a), size=(b, a)) for a, b in zip(sizes[:-1], sizes[1:])]
        bs = [rng.normal(0, bias_scale, size=b) for b in sizes[1:]] if bias else None
        return ReluNet(ws, bs)
