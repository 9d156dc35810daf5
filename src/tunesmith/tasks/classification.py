"""Sequence classification: text (and an optional text pair) -> one of N labels.

Works for encoders (BERT, MiniLM) and decoder LLMs alike through
AutoModelForSequenceClassification; a decoder scores its last non-pad token, so the
model's pad token id is set from the tokenizer. The label map (class names in id order) is
learned from the training rows unless given, stored in the run's config.yaml as
`task.labels`, and read back by predict. Rows name their label or give its integer id.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field

from tunesmith.config.components import TaskConfig
from tunesmith.errors import DataError
from tunesmith.tasks import TrainerParts, register_task
from tunesmith.tasks.heads import train_task_head
from tunesmith.tasks.rows import ColumnError, RowsReport, bad_row, column, columns_layout, say_skipped
from tunesmith.utils.io import write_json

_INT = re.compile(r"-?\d+")


class ClassificationConfig(TaskConfig):
    name: Literal["classification"] = "classification"
    text_column: str = Field("text", description="Column with the text to classify.")
    text_pair_column: str | None = Field(
        None, description="Column with a second text (NLI, paraphrase); encoded as a pair with the first."
    )
    label_column: str = Field("label", description="Column with the label: a class name or an integer id.")
    labels: list[str] | None = Field(
        None, description="Class names in id order. Omitted: collected from the training rows (numbers sorted "
        "numerically, names alphabetically) and saved in the run's config.yaml for predict.",
    )
    label_map: dict[str | int, str] | None = Field(
        None, description="Rename label values as read before anything else, e.g. {1: World, 2: Sports} for "
        "1-based class numbers.",
    )
    class_weights: Literal["none", "balanced"] | list[float] = Field(
        "none", description="Loss weight per class: none, balanced (inverse frequency in the training rows), "
        "or one number per class in label order.",
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing of the cross-entropy loss.")


def read_texts(record: dict, cfg: ClassificationConfig) -> tuple[str, str | None]:
    text = str(column(record, cfg.text_column, "classification", "text_column"))
    pair = None
    if cfg.text_pair_column:
        pair = str(column(record, cfg.text_pair_column, "classification", "text_pair_column"))
    return text, pair


def _label_text(value, cfg=None) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    renames = {str(k): v for k, v in (getattr(cfg, "label_map", None) or {}).items()}
    return renames.get(text, text)


def collect_labels(records: list[dict], cfg: ClassificationConfig) -> list[str]:
    seen = {_label_text(r[cfg.label_column], cfg) for r in records if r.get(cfg.label_column) not in (None, "")}
    if len(seen) < 2:
        raise DataError(f"classification needs at least 2 classes in column {cfg.label_column!r} of the training "
                        f"rows; found {sorted(seen) or 'none'} (set task.label_column or task.labels)")
    numeric = all(_INT.fullmatch(s) for s in seen)
    return sorted(seen, key=int) if numeric else sorted(seen)


def learn_labels(records: list[dict], cfg) -> None:
    """The label map, from the training rows unless task.labels gives it (label_words shares it)."""
    if cfg.labels is None:
        cfg.labels = collect_labels(records, cfg)


def label_id(value, labels: list[str], cfg=None) -> int:
    """A class name, or an integer id when the names are not themselves numbers."""
    text = _label_text(value, cfg)
    if text in labels:
        return labels.index(text)
    numeric_names = all(_INT.fullmatch(n) for n in labels)
    if not numeric_names and _INT.fullmatch(text) and 0 <= int(text) < len(labels):
        return int(text)
    shown = ", ".join(labels[:20]) + (" ..." if len(labels) > 20 else "")
    raise ColumnError(f"label {text!r} is not one of the training labels ({shown}); add it to the training "
                      "data or to task.labels")


def check_row(record: dict, cfg: ClassificationConfig) -> None:
    """What build_features needs of a row: its text(s) and a label (one of the labels, once known)."""
    read_texts(record, cfg)
    label = column(record, cfg.label_column, "classification", "label_column")
    if cfg.labels:
        label_id(label, cfg.labels, cfg)


def layouts(cfg: ClassificationConfig) -> str:
    return columns_layout(cfg.text_column, cfg.text_pair_column, cfg.label_column)


def model_kwargs(config, tokenizer) -> dict:
    labels = config.task.labels or []
    return {
        "num_labels": len(labels), "id2label": dict(enumerate(labels)),
        "label2id": {n: i for i, n in enumerate(labels)}, "pad_token_id": tokenizer.pad_token_id,
        "ignore_mismatched_sizes": True,  # a base model with another head gets a fresh one
    }


def collator(tokenizer):
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer)


def sequence_classification_class():
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification


def encode(tokenizer, text: str, pair: str | None, cutoff: int) -> dict:
    enc = tokenizer(text, pair, truncation=True, max_length=cutoff)
    return {k: list(v) for k, v in enc.items()}


def class_weights(cfg: ClassificationConfig, train: list[dict]) -> list[float] | None:
    if cfg.class_weights == "none":
        return None
    n = len(cfg.labels)
    if isinstance(cfg.class_weights, list):
        if len(cfg.class_weights) != n:
            raise DataError(f"task.class_weights has {len(cfg.class_weights)} numbers but there are {n} labels "
                            f"({', '.join(cfg.labels)})")
        return [float(w) for w in cfg.class_weights]
    import numpy as np
    from sklearn.utils.class_weight import compute_class_weight

    ys = np.array([f["labels"] for f in train])
    present = np.unique(ys)
    weights = dict(zip(present, compute_class_weight("balanced", classes=present, y=ys)))
    return [float(weights.get(i, 1.0)) for i in range(n)]  # a class absent from train keeps weight 1


class WeightedLoss:
    """Cross-entropy with class weights and label smoothing, summed then divided by the batch's
    row count, so gradient accumulation averages over rows like the model's own loss."""

    def __init__(self, weights: list[float] | None, smoothing: float):
        self.weights, self.smoothing = weights, smoothing

    def __call__(self, outputs, labels, num_items_in_batch=None):
        import torch
        import torch.nn.functional as F

        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        weight = torch.tensor(self.weights, dtype=logits.dtype, device=logits.device) if self.weights else None
        loss = F.cross_entropy(logits.float(), labels, weight=weight, label_smoothing=self.smoothing,
                               reduction="sum")
        count = num_items_in_batch if num_items_in_batch is not None else labels.numel()
        return loss / count


class ClassificationEval:
    """compute_metrics: scores for the log, plus a per-class report and confusion matrix PNG in the run.
    `classes`: one task's eval set of data.tasks (the label set is the union of the tasks'): macro
    averages over the classes of its rows, and no report files (those are the run's whole eval set's)."""

    def __init__(self, labels: list[str], run_dir: Path, classes: list[int] | None = None):
        self.labels, self.run_dir, self.classes = labels, Path(run_dir), classes

    def __call__(self, prediction) -> dict:
        from tunesmith.metrics.classification import classification_scores, per_class_report, plot_confusion_matrix

        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        preds, refs = logits.argmax(-1).tolist(), prediction.label_ids.tolist()
        if self.classes is not None:
            return classification_scores(preds, refs, self.labels, classes=self.classes)
        write_json(self.run_dir / "classification_report.json",
                   {"labels": self.labels, "per_class": per_class_report(preds, refs, self.labels)})
        plot_confusion_matrix(preds, refs, self.labels, self.run_dir / "plots" / "confusion_matrix.png")
        return classification_scores(preds, refs, self.labels)


def make_trainer(parts: TrainerParts):
    train_task_head(parts.model)  # freeze tuning must not freeze the fresh head
    cfg = parts.config.task
    weights = class_weights(cfg, parts.train)
    loss = WeightedLoss(weights, cfg.label_smoothing) if weights or cfg.label_smoothing else None
    trainer = parts.trainer_class(
        model=parts.model, args=parts.arguments(), train_dataset=parts.train, eval_dataset=parts.eval or None,
        data_collator=collator(parts.tokenizer), callbacks=parts.callbacks, compute_loss_func=loss,
        compute_metrics=ClassificationEval(cfg.labels, parts.run_dir),
    )
    # another eval set than the run's (a task of data.tasks, an earlier task's): scored over its classes
    trainer.metrics_for = lambda features: ClassificationEval(cfg.labels, parts.run_dir,
                                                              sorted({f["labels"] for f in features}))
    return trainer


def predict(model, tokenizer, records: list[dict], config, batch_size: int = 32) -> tuple[list[dict], dict]:
    """The predicted label and class probabilities of each row; scores when rows carry labels."""
    from tunesmith.tasks.batching import batched_logits

    cfg, report = config.task, RowsReport()
    kept, encoded, refs = [], [], []
    for record in records:
        try:
            text, pair = read_texts(record, cfg)
            gold = record.get(cfg.label_column)
            refs.append(label_id(gold, cfg.labels, cfg) if gold not in (None, "") else None)
        except ColumnError as err:
            bad_row(report, config, record, str(err))
            continue
        kept.append((record, text, pair))
        encoded.append(encode(tokenizer, text, pair, config.data.cutoff_len))
    say_skipped(report, "input")
    probs = batched_logits(model, collator(tokenizer), encoded, batch_size).softmax(-1)
    rows = []
    for (record, text, pair), p, ref in zip(kept, probs.tolist(), refs):
        best = max(range(len(p)), key=p.__getitem__)
        row = {"origin": record.get("_origin"), "text": text, **({"text_pair": pair} if pair else {}),
               "label": cfg.labels[best], "score": p[best],
               "probabilities": {n: q for n, q in zip(cfg.labels, p)}}
        if ref is not None:
            row["reference"] = cfg.labels[ref]
        rows.append(row)
    metrics = {}
    if rows and all(r is not None for r in refs):
        from tunesmith.metrics.classification import classification_scores

        preds = [cfg.labels.index(r["label"]) for r in rows]
        metrics = classification_scores(preds, refs, cfg.labels)
    return rows, metrics


@register_task(ClassificationConfig, "sequence classification (encoder or decoder) with a label map",
               model_class=sequence_classification_class, collator=collator, data_format="rows",
               model_kwargs=model_kwargs, make_trainer=make_trainer, predict=predict, check_row=check_row,
               layouts=layouts, learn=learn_labels)
def build_features(records: list[dict], tokenizer, config) -> tuple[list[dict], RowsReport]:
    cfg, report = config.task, RowsReport()
    learn_labels(records, cfg)  # from the training rows; eval rows must then use these labels
    features = []
    for record in records:
        try:
            text, pair = read_texts(record, cfg)
            label = label_id(column(record, cfg.label_column, "classification", "label_column"), cfg.labels, cfg)
        except ColumnError as err:
            bad_row(report, config, record, str(err))
            continue
        feature = encode(tokenizer, text, pair, config.data.cutoff_len)
        feature["labels"] = label
        report.count(feature["input_ids"], config.data.cutoff_len, record.get("_origin", "?"))
        features.append(feature)
    say_skipped(report, "classification")
    return features, report
