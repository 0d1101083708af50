"""The report's figures, drawn with matplotlib (Agg) as inline SVG (vector, text kept as text).

Every function takes prepared series (numbers straight from the records / evaluations / metrics.jsonl; nothing
is computed here beyond layout) and returns an ``<svg ...>...</svg>`` string, or ``""`` when there is nothing to
draw (the report then says "not recorded" instead of showing an empty axis).
"""
from __future__ import annotations

import io
import re
import textwrap
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

plt.rcParams.update({
    "svg.fonttype": "none",  # text stays text: searchable, crisp, small
    "svg.hashsalt": "mixacm-report",  # deterministic ids: the committed report does not churn
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
    "figure.dpi": 100,
})
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22"]
CLEAN, ROBUST, AA = "#1f77b4", "#d62728", "#7b3294"

# One palette for every figure and report: colour and marker by method family; runs within a family differ by
# shade (in run order) and line style, so no two runs of a figure share colour and style.
FAMILIES: dict[str, dict[str, Any]] = {
    "teacher": {"label": "teacher", "marker": "*", "shades": ["#000000", "#444444"]},
    "mixacm": {"label": "MixACM and its ablations", "marker": "o",
               "shades": ["#08306b", "#2171b5", "#4292c6", "#6baed6", "#1d4e89", "#3a7bbf", "#5fa2dd", "#0b559f",
                          "#7fb3e0", "#123f73"]},
    "kd": {"label": "KD only", "marker": "v", "shades": ["#e6550d", "#fd8d3c"]},
    "at": {"label": "adversarial training", "marker": "s",
           "shades": ["#a50f15", "#de2d26", "#fb6a4a", "#67000d", "#ef3b2c", "#cb181d", "#fc9272"]},
    "natural": {"label": "natural training", "marker": "^", "shades": ["#238b45", "#74c476"]},
}
AT_METHODS = ("pgd_at", "pgd7_at", "fast_at", "trades", "mart", "awp", "fat", "free_at", "ard")
STYLES = ["-", "--", ":", "-."]


def family_of(run: str, method: str | None) -> str:
    """A run's method family (the keys of FAMILIES) from its method, or from its run key when the method is
    unknown."""
    m = (method or "").lower()
    if run == "teacher" or m == "teacher":
        return "teacher"
    if m in AT_METHODS or run.startswith(("pgd_at", "trades", "mart", "awp", "fat", "free_at", "ard")):
        return "at"
    if m == "natural" or run.startswith("natural"):
        return "natural"
    if m == "kd" or run.startswith("only_kd"):
        return "kd"
    return "mixacm"


def run_styles(runs: list[tuple[str, str | None]]) -> dict[str, dict[str, Any]]:
    """run -> {"colour", "marker", "dash", "family"}: the family's colour and marker, a distinct shade and line
    style per run within the family (in the given order)."""
    out: dict[str, dict[str, Any]] = {}
    seen: dict[str, int] = {}
    for run, method in runs:
        if run in out:
            continue
        fam = family_of(run, method)
        i = seen.get(fam, 0)
        seen[fam] = i + 1
        shades = FAMILIES[fam]["shades"]
        out[run] = {"colour": shades[i % len(shades)], "marker": FAMILIES[fam]["marker"], "family": fam,
                    "style": STYLES[(i // len(shades)) % len(STYLES)]}
    return out


def _num(v: float) -> str:
    """Tick labels people read: 0.1, 1, 500, 5,000, 50,000 -- never 5e+03."""
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
    return f"{v:.2g}"


def _to_svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    s = buf.getvalue()
    s = s[s.index("<svg"):]  # drop the XML declaration and DOCTYPE: the SVG sits inline in the HTML
    s = re.sub(r"<metadata>.*?</metadata>", "", s, flags=re.S)
    return s.replace("<svg ", '<svg role="img" style="max-width:100%;height:auto" ', 1)


def _err(stds: list[float | None]) -> list[float] | None:
    return [s or 0.0 for s in stds] if any(s for s in stds) else None


def lines_with_errors(series: list[dict[str, Any]], *, xlabel: str, ylabel: str, title: str = "",
                      logx: bool = False, refs: list[dict[str, Any]] | None = None, pct_x: bool = False,
                      size: tuple[float, float] = (5.6, 3.4)) -> str:
    """series: [{"label", "x", "y", "std", "colour", "dash"}] drawn as markers + lines + ± std error bars.
    refs: [{"label", "y", "std", "colour"}] drawn as horizontal reference lines (a single-point baseline)."""
    series = [s for s in series if s["x"]]
    refs = refs or []
    if not series and not refs:
        return ""
    fig, ax = plt.subplots(figsize=size)
    for i, s in enumerate(series):
        ax.errorbar(s["x"], s["y"], yerr=_err(s.get("std") or []), label=s["label"], marker="o", ms=5, capsize=3,
                    lw=1.6, color=s.get("colour") or COLOURS[i % len(COLOURS)], ls="--" if s.get("dash") else "-")
    for r in refs:
        ax.axhline(r["y"], color=r["colour"], ls=":", lw=1.4, label=r["label"])
        if r.get("std"):
            ax.axhspan(r["y"] - r["std"], r["y"] + r["std"], color=r["colour"], alpha=0.08, lw=0)
    if logx:
        ax.set_xscale("log")
    xs = sorted({x for s in series for x in s["x"]})
    if xs and len(xs) <= 8:
        ax.set_xticks(xs)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    fmt = (lambda v, _: f"{v * 100:.0f}%") if pct_x else (lambda v, _: _num(v))
    ax.xaxis.set_major_formatter(FuncFormatter(fmt))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _num(v)))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _to_svg(fig)


def place_labels(ax, fig, texts: list[Any], anchors: list[tuple[float, float]]) -> list[Any]:
    """Move each label to the first of a few offsets around its point where its drawn box overlaps no label placed
    before it nor the legend; a label with no free place is removed (and returned), so the figure never shows
    overlapping text."""
    offsets = [(4, 3), (4, -10), (-6, 6), (-6, -12), (6, 12), (6, -18), (-10, 16), (-10, -22)]
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend()
    placed = [legend.get_window_extent(renderer)] if legend is not None else []
    dropped = []
    for t, _ in zip(texts, anchors):
        for dx, dy in offsets:
            t.set_position((dx, dy))
            t.set_horizontalalignment("left" if dx >= 0 else "right")
            box = t.get_window_extent(renderer).expanded(1.02, 1.05)
            if not any(box.overlaps(b) for b in placed):
                placed.append(box)
                break
        else:
            t.remove()
            dropped.append(t)
    return dropped


def scatter_clean_robust(points: list[dict[str, Any]], *, eval_note: str) -> str:
    """points: [{"label", "clean", "clean_std", "robust", "robust_std", "method"}]; colour and marker by method
    family (FAMILIES); labels placed without overlap (a label with no free place is left out and named in a note)."""
    return _to_svg(scatter_figure(points, eval_note=eval_note)) if points else ""


def scatter_figure(points: list[dict[str, Any]], *, eval_note: str):
    """The drawn matplotlib figure behind ``scatter_clean_robust`` (tests read its text boxes)."""
    fig, ax = plt.subplots(figsize=(7.6, 4.8))
    styles = run_styles([(p["label"], p.get("method")) for p in points])
    seen, texts, anchors = set(), [], []
    for p in points:
        st = styles[p["label"]]
        lab = FAMILIES[st["family"]]["label"]
        ax.errorbar(p["clean"], p["robust"], xerr=p.get("clean_std") or None, yerr=p.get("robust_std") or None,
                    marker=st["marker"], color=st["colour"], ms=10 if st["family"] == "teacher" else 6, capsize=2,
                    lw=1, ls="none", label=None if lab in seen else lab)
        seen.add(lab)
        texts.append(ax.annotate(p["label"], (p["clean"], p["robust"]), textcoords="offset points", xytext=(4, 3),
                                 fontsize=7, color="#333333"))
        anchors.append((p["clean"], p["robust"]))
    ax.set_xlabel("clean accuracy (%)")
    ax.set_ylabel(f"robust accuracy (%), {eval_note}")
    ax.xaxis.set_major_locator(MaxNLocator(8))
    ax.legend(loc="upper left", frameon=False)
    fig.canvas.draw()
    dropped = place_labels(ax, fig, texts, anchors)
    if dropped:
        ax.text(1.0, -0.16, "unlabelled (no room): " + ", ".join(t.get_text() for t in dropped), transform=ax.transAxes,
                ha="right", va="top", fontsize=6, color="#555555", wrap=True)
    return fig


def grouped_bars(panels: list[dict[str, Any]], *, ylabel: str) -> str:
    """panels: [{"title", "groups": [label...], "bars": [{"label", "values", "stds", "colour"}]}] side by side."""
    panels = [p for p in panels if p["groups"]]
    if not panels:
        return ""
    widths = [max(2.2, 0.75 * len(p["groups"]) + 0.8) for p in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(sum(widths), 3.4), squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    for ax, p in zip(axes[0], panels):
        nb = len(p["bars"])
        w = 0.8 / max(nb, 1)
        for j, b in enumerate(p["bars"]):
            xs = [i - 0.4 + w * (j + 0.5) for i in range(len(p["groups"]))]
            vals = [v if v is not None else 0.0 for v in b["values"]]
            ax.bar(xs, vals, width=w * 0.95, yerr=_err(b["stds"]), capsize=3, color=b["colour"], label=b["label"],
                   error_kw={"lw": 1})
            for x, v in zip(xs, b["values"]):
                if v is None:
                    ax.text(x, 0.5, "n/r", ha="center", va="bottom", fontsize=6, rotation=90, color="#777777")
        ax.set_xticks(range(len(p["groups"])))
        # wrapped to the width of one group (about 12 characters at 8 pt), horizontal: neighbours never overlap
        ax.set_xticklabels([textwrap.fill(g, 12, break_long_words=False) for g in p["groups"]], fontsize=8)
        ax.set_title(p["title"])
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _num(v)))
        ax.grid(axis="x", visible=False)
    axes[0][0].set_ylabel(ylabel)
    fig.tight_layout()
    h, lab = axes[0][0].get_legend_handles_labels()
    fig.legend(h, lab, loc="lower center", ncol=len(lab), frameon=False, bbox_to_anchor=(0.5, 1.0))
    return _to_svg(fig)


def small_multiples(panels: list[dict[str, Any]], *, xlabel: str, ylabel: str, ncols: int = 4,
                    legend_cols: int = 1) -> str:
    """panels: [{"title", "series": [{"label", "x", "y", "colour", "dash"}]}]; one shared legend."""
    panels = [p for p in panels if any(s["x"] for s in p["series"])]
    if not panels:
        return ""
    ncols = min(ncols, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.9 * ncols, 2.5 * nrows + 0.4), squeeze=False)
    handles: dict[str, Any] = {}
    for ax, p in zip(axes.flat, panels):
        for s in p["series"]:
            (h,) = ax.plot(s["x"], s["y"], color=s["colour"], ls=s.get("style") or ("--" if s.get("dash") else "-"),
                           lw=1.4, marker=s.get("marker", "o") if len(s["x"]) <= 12 else None, ms=3)
            if s.get("legend", True):
                handles.setdefault(s["label"], h)
        ax.set_title(p["title"])
        ax.set_xlabel(xlabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _num(v)))
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel(ylabel)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=max(1, min(legend_cols, len(handles))),
               frameon=False, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    return _to_svg(fig)
