"""PNG charts for evaluation reports: one small panel per score, since scales differ (BLEU 0-100,
ROUGE 0-1, perplexity unbounded)."""

from __future__ import annotations

import math
from pathlib import Path

from tunesmith.utils.io import save_png

_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_png: Path) -> Path:
    save_png(fig, out_png, dpi=100)
    return out_png


def _grid(count: int, plt, width: float = 3.2, height: float = 2.8):
    cols = min(count, 4)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.axis("off")
    return fig, list(axes.flat)


def score_panels(series: dict[str, dict[str, float]], keys: list[str], out_png: Path, title: str = "",
                 directions: dict[str, str] | None = None) -> Path | None:
    """A bar per series (model, perturbation...) in one panel per score key."""
    keys = [k for k in keys if any(k in s for s in series.values())]
    if not keys:
        return None
    plt = _pyplot()
    fig, axes = _grid(len(keys), plt)
    labels = list(series)
    for ax, key in zip(axes, keys):
        values = [series[label].get(key, float("nan")) for label in labels]
        bars = ax.bar(range(len(labels)), values, color=[_COLORS[i % len(_COLORS)] for i in range(len(labels))])
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        arrow = {"higher": " (higher is better)", "lower": " (lower is better)"}.get((directions or {}).get(key, ""), "")
        ax.set_title(key + arrow, fontsize=9)
        ax.set_xticks(range(len(labels)), [_short(l) for l in labels], fontsize=8, rotation=20, ha="right")
        ax.margins(y=0.15)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, out_png)


def row_histograms(per_model_rows: dict[str, list[dict]], keys: list[str], out_png: Path) -> Path | None:
    """Distribution of per-row scores, one panel per key, one outline per model."""
    keys = [k for k in keys if any(k in r for rows in per_model_rows.values() for r in rows)]
    if not keys:
        return None
    plt = _pyplot()
    fig, axes = _grid(len(keys), plt)
    for ax, key in zip(axes, keys):
        for i, (label, rows) in enumerate(per_model_rows.items()):
            values = [r[key] for r in rows if key in r]
            if values:
                ax.hist(values, bins=10, histtype="step", linewidth=1.8, color=_COLORS[i % len(_COLORS)],
                        label=_short(label))
        ax.set_title(f"{key} per row", fontsize=9)
        ax.set_ylabel("rows", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out_png)


def _short(label: str, width: int = 22) -> str:
    return label if len(label) <= width else "…" + label[-(width - 1):]
