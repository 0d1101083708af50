"""Activated-channel-map profiles (supplement A.2, Fig. 4) and a dependency-free SVG renderer.

For each model and block: a_i = g_c(A_i) per image (max over H x W, Sec. 5.1), "normalized with the magnitude"
(divided by its L2 norm, as in the ACM loss), averaged over N natural test images (the paper uses 500) and sorted
ascending. A scalar distance of each profile to the teacher's: RMS difference of the sorted profiles after dividing each
by its maximum and resampling both to a common length (channel counts differ between teacher and student).
Activation-frequency view (cheap extra): per channel, the fraction of images in which its normalised map value
exceeds that image's mean over channels, sorted ascending.

``acm_profiles`` returns JSON-able data; ``render_acm_plot(data, path)`` draws from that JSON only.
"""
from __future__ import annotations

import html
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mixacm.losses import activated_channel_map

SCHEMA = "mixacm.acm_profiles/1"
PALETTE = ("#7f7f7f", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def resample(profile: list[float] | Tensor, length: int) -> Tensor:
    """Linear interpolation of a profile onto ``length`` evenly spaced positions in [0,1]."""
    p = torch.as_tensor(profile, dtype=torch.float64)
    if len(p) == length:
        return p
    if len(p) == 1:
        return p.expand(length).clone()
    return F.interpolate(p[None, None], size=length, mode="linear", align_corners=True)[0, 0]


def profile_distance(p_ref: list[float], p: list[float]) -> float:
    """RMS difference of two sorted profiles, each max-normalised, resampled to max(len) points; 0 iff same shape."""
    length = max(len(p_ref), len(p))
    a, b = resample(p_ref, length), resample(p, length)
    a = a / a.abs().max().clamp_min(1e-12)
    b = b / b.abs().max().clamp_min(1e-12)
    return float((a - b).pow(2).mean().sqrt())


@torch.no_grad()
def _model_profiles(model: nn.Module, x: Tensor, batch_size: int, mapping: str, device) -> list[dict]:
    sums: list[Tensor] = []
    freq: list[Tensor] = []
    for s in range(0, len(x), batch_size):
        _, feats = model.forward_intermediates(x[s:s + batch_size].to(device))
        for i, f in enumerate(feats):
            a = F.normalize(activated_channel_map(f.float(), mapping), dim=1)  # (B, C) unit rows
            active = (a > a.mean(1, keepdim=True)).double().sum(0)  # (C,) images where the channel is above average
            if len(sums) <= i:
                sums.append(torch.zeros(a.shape[1], dtype=torch.float64))
                freq.append(torch.zeros(a.shape[1], dtype=torch.float64))
            sums[i] += a.double().sum(0).cpu()
            freq[i] += active.cpu()
    blocks = []
    for i, (s_, f_) in enumerate(zip(sums, freq)):
        blocks.append({"block": i + 1, "channels": len(s_), "profile": (s_ / len(x)).sort().values.tolist(),
                       "frequency": (f_ / len(x)).sort().values.tolist()})
    return blocks


def acm_profiles(models: dict[str, nn.Module], x: Tensor, *, n: int | None = 500, seed: int = 0,
                 teacher: str | None = "teacher", blocks: list[int] | None = None, mapping: str = "max",
                 batch_size: int = 100, device=None) -> dict:
    """Sorted mean ACM profiles per block of each model on n natural images (a seeded subset of x), and the
    distance of each non-teacher profile to the teacher's (when ``teacher`` names one of the models)."""
    if teacher is not None and teacher not in models:
        raise ValueError(f"teacher {teacher!r} is not among the models {list(models)}; pass teacher=None or a name")
    if n is not None and n < len(x):
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n].sort().values
        x = x[idx]
    out = {"schema": SCHEMA, "n_images": len(x), "seed": seed, "mapping": mapping, "normalise": "l2 per image",
           "teacher": teacher, "models": {}, "distances": {}}
    for name, model in models.items():
        was_training = model.training
        model.eval()
        dev = device if device is not None else next((p.device for p in model.parameters()), "cpu")
        try:
            prof = _model_profiles(model, x, batch_size, mapping, dev)
        finally:
            model.train(was_training)
        if blocks is not None:
            prof = [b for b in prof if b["block"] in blocks]
        out["models"][name] = {"blocks": prof}
    if teacher is not None:
        ref = {b["block"]: b for b in out["models"][teacher]["blocks"]}
        for name, m in out["models"].items():
            if name == teacher:
                continue
            per = {b["block"]: profile_distance(ref[b["block"]]["profile"], b["profile"])
                   for b in m["blocks"] if b["block"] in ref}
            freq = {b["block"]: profile_distance(ref[b["block"]]["frequency"], b["frequency"])
                    for b in m["blocks"] if b["block"] in ref}
            out["distances"][name] = {"per_block": {str(k): v for k, v in per.items()},
                                      "mean": sum(per.values()) / max(len(per), 1),
                                      "frequency_per_block": {str(k): v for k, v in freq.items()}}
    return out


# ------------------------------------------------------------------------------------------------- renderer

def _polyline(values: list[float], x0: float, y0: float, w: float, h: float, vmax: float) -> str:
    n = len(values)
    pts = []
    for j, v in enumerate(values):
        px = x0 + (w * j / (n - 1) if n > 1 else w / 2)
        py = y0 + h - h * (v / vmax if vmax > 0 else 0.0)
        pts.append(f"{px:.1f},{py:.1f}")
    return " ".join(pts)


def render_acm_plot(data: dict, path: str | Path, *, view: str = "profile") -> Path:
    """Draw Fig. 4 from ``acm_profiles`` JSON: one panel per block, one line per model (x: channel rank scaled to
    [0,1], since channel counts differ; y: mean normalised ACM). ``view="frequency"`` draws the frequency view.
    SVG with no dependencies; a .png path uses matplotlib if it is installed."""
    if data.get("schema") != SCHEMA:
        raise ValueError(f"not ACM profile data (schema {data.get('schema')!r}, expected {SCHEMA!r})")
    if view not in ("profile", "frequency"):
        raise ValueError(f"unknown view {view!r}; valid: profile, frequency")
    path = Path(path)
    names = list(data["models"])
    block_ids = sorted({b["block"] for m in data["models"].values() for b in m["blocks"]})
    series = {(name, b["block"]): b[view] for name in names for b in data["models"][name]["blocks"]}
    if path.suffix.lower() == ".png":
        return _render_png(data, path, names, block_ids, series, view)

    pw, ph, pad, top, legend_h = 260, 180, 45, 40, 22 * len(names) + 10
    width, height = pad + len(block_ids) * (pw + pad), top + ph + pad + legend_h
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{pad}" y="18" font-size="13">Activated channel maps ({view}, sorted ascending; '
             f'mean over {data["n_images"]} images)</text>']
    for k, blk in enumerate(block_ids):
        x0, y0 = pad + k * (pw + pad), top
        vals = [v for (nm, b), s in series.items() if b == blk for v in s]
        vmax = max(vals) if vals else 1.0
        parts.append(f'<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
        parts.append(f'<text x="{x0 + pw / 2}" y="{y0 - 6}" text-anchor="middle">block {blk}</text>')
        parts.append(f'<text x="{x0 - 4}" y="{y0 + 4}" text-anchor="end">{vmax:.3g}</text>')
        parts.append(f'<text x="{x0 - 4}" y="{y0 + ph}" text-anchor="end">0</text>')
        parts.append(f'<text x="{x0 + pw / 2}" y="{y0 + ph + 16}" text-anchor="middle">channel rank (scaled)</text>')
        for i, name in enumerate(names):
            if (name, blk) in series:
                parts.append(f'<polyline fill="none" stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="1.6" '
                             f'points="{_polyline(series[(name, blk)], x0, y0, pw, ph, vmax)}"/>')
    for i, name in enumerate(names):
        y = top + ph + pad + 22 * i
        dist = data["distances"].get(name)
        label = name + (" (teacher)" if name == data.get("teacher") else "")
        if dist:
            label += f" — distance to teacher {dist['mean']:.4f}"
        parts.append(f'<line x1="{pad}" y1="{y - 4}" x2="{pad + 24}" y2="{y - 4}" '
                     f'stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="3"/>')
        parts.append(f'<text x="{pad + 30}" y="{y}">{html.escape(label)}</text>')
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _render_png(data, path, names, block_ids, series, view) -> Path:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("PNG output needs matplotlib (not installed); write an .svg path instead") from None
    fig, axes = plt.subplots(1, len(block_ids), figsize=(3.5 * len(block_ids), 3), squeeze=False)
    for ax, blk in zip(axes[0], block_ids):
        for i, name in enumerate(names):
            if (name, blk) in series:
                s = series[(name, blk)]
                ax.plot([j / max(len(s) - 1, 1) for j in range(len(s))], s, color=PALETTE[i % len(PALETTE)],
                        label=name)
        ax.set_title(f"block {blk}")
        ax.set_xlabel("channel rank (scaled)")
    axes[0][0].set_ylabel(view)
    axes[0][0].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
