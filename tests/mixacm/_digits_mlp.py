"""A small MLP trained on scikit-learn's digits, shared by the attack and evaluator tests (trained once)."""
import functools

import torch
import torch.nn.functional as F
from torch import nn


@functools.lru_cache(maxsize=1)
def trained_digits_mlp():
    """-> (model in eval mode, x_test (397, 1, 8, 8) in [0,1], y_test); trained on the first 1400 digits."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16
    y = torch.tensor(d.target)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(300):
        i = torch.randint(0, 1400, (128,))
        loss = F.cross_entropy(model(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), x[1400:], y[1400:]
