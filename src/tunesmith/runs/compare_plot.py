"""Overlaid curves of several runs: one panel per metric, one line per run."""

from __future__ import annotations

import math
from pathlib import Path

from tunesmith.runs.reader import curves
from tunesmith.utils.io import save_png

PREFERRED = ("loss", "eval_loss")  # first panels; other eval_* metrics follow
SKIPPED_BY_DEFAULT = {"learning_rate", "eval_perplexity"}  # a schedule and a function of eval_loss


def plot_compare(runs: list[Path], out_png: Path, metrics: list[str] | None = None,
                 x: str = "step", labels: list[str] | None = None) -> tuple[Path, list[str]]:
    """Write the PNG; returns it and the metrics drawn (the runs' shared and own metrics)."""
    data = [curves(run, x) for run in runs]
    available = list(dict.fromkeys(k for d in data for k in d))
    chosen = metrics or [m for m in PREFERRED if m in available] + sorted(
        m for m in available if m not in PREFERRED and m not in SKIPPED_BY_DEFAULT and m.startswith("eval_"))
    missing = [m for m in chosen if m not in available]
    if missing:
        from tunesmith.errors import RunDirError

        raise RunDirError(f"no run logged {', '.join(missing)}; logged: {', '.join(available) or 'nothing'}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(chosen)) or 1
    rows = -(-len(chosen) // cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    names = labels or [run.name for run in runs]
    for ax, metric in zip(axes.flat, chosen):
        for name, curve in zip(names, data):
            if curve.get(metric):
                ax.plot(*zip(*curve[metric]), marker="o" if metric.startswith("eval_") else None,
                        markersize=3, label=name)
        if _spans_decades([y for curve in data for _, y in curve.get(metric, [])]):
            ax.set_yscale("log")  # one diverging run would flatten every other curve
        ax.set_title(metric)
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(chosen):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, out_png)
    return out_png, chosen


def _spans_decades(values: list[float]) -> bool:
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > 100
