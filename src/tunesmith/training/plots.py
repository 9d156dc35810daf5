"""Loss curves as PNG from metrics.jsonl."""

from __future__ import annotations

from pathlib import Path

from tunesmith.utils.io import read_jsonl, save_png


def plot_loss(metrics_file: Path, out_png: Path) -> Path | None:
    """Train and eval loss against step; None when there is nothing to plot."""
    if not metrics_file.is_file():
        return None
    rows = read_jsonl(metrics_file)
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    evals = [(r["step"], r["eval_loss"]) for r in rows if "eval_loss" in r]
    if not train and not evals:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train), label="train loss")
    if evals:
        ax.plot(*zip(*evals), marker="o", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_png(fig, out_png)
    return out_png


# Keys the Trainer adds to every evaluation; the metrics plot shows the scores of eval.metrics.
_TRAINER_EVAL_KEYS = {"eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second",
                      "eval_perplexity", "eval_model_preparation_time"}


def plot_metrics(metrics_file: Path, out_png: Path) -> Path | None:
    """eval.metrics scores against step, one panel each (their scales differ)."""
    if not metrics_file.is_file():
        return None
    rows = read_jsonl(metrics_file)
    keys = sorted({k for r in rows for k in r if k.startswith("eval_") and k not in _TRAINER_EVAL_KEYS})
    if not keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(len(keys), 3)
    rows_n = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4 * cols, 3 * rows_n), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.axis("off")
    for ax, key in zip(axes.flat, keys):
        points = [(r["step"], r[key]) for r in rows if key in r]
        ax.plot(*zip(*points), marker="o")
        ax.set_title(key.removeprefix("eval_"), fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_png(fig, out_png)
    return out_png
