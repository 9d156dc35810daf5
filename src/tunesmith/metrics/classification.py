"""Classification metrics on class ids: accuracy, macro/micro P/R/F1, per-class report, confusion matrix.

scikit-learn does the counting; this file only fixes the conventions (every class of the label
map is counted, even one that never occurs, and an undefined ratio is 0 rather than a warning).
"""

from __future__ import annotations

from pathlib import Path

from tunesmith.metrics import register_metric


def _ids(labels, predictions, references) -> list[int]:
    if labels is not None:
        return list(range(len(labels)))
    return sorted({int(x) for x in [*predictions, *references]})


@register_metric("accuracy", "share of predictions equal to the reference class", inputs="labels")
def accuracy(predictions, references, **options) -> dict[str, float]:
    from sklearn.metrics import accuracy_score

    return {"accuracy": float(accuracy_score(list(references), list(predictions)))}


@register_metric("classification", "accuracy and macro/micro precision, recall and F1", inputs="labels")
def classification_scores(predictions, references, labels: list[str] | None = None,
                          classes: list[int] | None = None, **options) -> dict[str, float]:
    """`labels` names the classes by id; without it the classes are those seen in the inputs.
    `classes`: the class ids the macro averages count (one task's classes of a shared label set);
    default every class."""
    from sklearn.metrics import precision_recall_fscore_support

    ids = _ids(labels, predictions, references)
    scores = accuracy(predictions, references)
    for average in ("macro", "micro"):
        p, r, f, _ = precision_recall_fscore_support(
            list(references), list(predictions), labels=classes if classes and average == "macro" else ids,
            average=average, zero_division=0
        )
        scores.update({f"{average}_precision": float(p), f"{average}_recall": float(r), f"{average}_f1": float(f)})
    return scores


def per_class_report(predictions, references, labels: list[str]) -> dict[str, dict[str, float]]:
    """{class name: {precision, recall, f1, support}} for every class of the label map."""
    from sklearn.metrics import precision_recall_fscore_support

    ids = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(
        list(references), list(predictions), labels=ids, average=None, zero_division=0
    )
    return {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, name in enumerate(labels)
    }


def confusion_counts(predictions, references, labels: list[str]) -> list[list[int]]:
    """Rows are reference classes, columns predicted classes."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(list(references), list(predictions), labels=list(range(len(labels)))).tolist()


def plot_confusion_matrix(predictions, references, labels: list[str], path: str | Path) -> Path:
    """A PNG heat map with the counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tunesmith.utils.io import save_png

    counts = confusion_counts(predictions, references, labels)
    size = max(4.0, 0.5 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    top = max(max(row) for row in counts) if counts else 0
    for i, row in enumerate(counts):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > top / 2 else "black")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    path = Path(path)
    save_png(fig, path)
    return path
