"""Classification as generation with a causal LLM: the assistant answers with the label's name.

The same rows and label map as `classification`, but the model is the chat LLM itself: each
row becomes a user turn (`prompt`, filled with the text and the label names) and an
assistant turn with the label word, trained like SFT. Eval and predict do not sample: they
score every label word after the prompt and take the most likely one, so the answer is always
a valid label. Useful to compare with a classification head on the same data.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import TaskConfig
from tunesmith.data.templates import get_template
from tunesmith.data.tokenize import TokenizeReport, add_example, encode_segments
from tunesmith.tasks import TrainerParts, register_task
from tunesmith.tasks.classification import label_id, learn_labels, read_texts
from tunesmith.tasks.collate import CausalLMCollator, causal_lm_class
from tunesmith.tasks.rows import ColumnError, RowsReport, bad_row, column, columns_layout, say_skipped
from tunesmith.tasks.sft import with_system


class LabelWordsConfig(TaskConfig):
    name: Literal["label_words"] = "label_words"
    text_column: str = Field("text", description="Column with the text to classify.")
    text_pair_column: str | None = Field(None, description="Optional second text column ({text_pair}).")
    label_column: str = Field("label", description="Column with the label: a class name or an integer id.")
    labels: list[str] | None = Field(None, description="Label words in id order (default: from the training rows).")
    prompt: str = Field("{text}\n\nAnswer with one of: {labels}.",
                        description="The user turn; {text}, {text_pair} and {labels} are filled in.")


def messages(cfg: LabelWordsConfig, text: str, pair: str | None, answer: str | None = None) -> list[dict]:
    user = cfg.prompt.format(text=text, text_pair=pair or "", labels=", ".join(cfg.labels))
    turns = [{"role": "user", "content": user}]
    return turns + ([{"role": "assistant", "content": answer}] if answer is not None else [])


def _prompt_and_words(cfg, tokenizer, config, text, pair) -> tuple[list[int], list[list[int]]]:
    """Prompt ids, and the ids of each label word as the assistant's reply (with end of turn)."""
    template = get_template(config.data.template, tokenizer)
    prompt = with_system(messages(cfg, text, pair), config.data.system)

    def encode(s):
        return tokenizer(s, add_special_tokens=False)["input_ids"]

    prompt_ids = encode(template.prompt(prompt, tokenizer))
    words = []
    for name in cfg.labels:
        segments = template.segments([*prompt, {"role": "assistant", "content": name}], tokenizer)
        words.append(encode(segments[-1][0]))
    return prompt_ids, words


def label_scores(model, tokenizer, config, texts: list[tuple[str, str | None]], batch_size: int):
    """Log-probability of every label word for every text: a list of per-label lists."""
    from tunesmith.tasks.batching import continuation_logps

    pairs = []
    for text, pair in texts:
        prompt_ids, words = _prompt_and_words(config.task, tokenizer, config, text, pair)
        pairs += [(prompt_ids, w) for w in words]
    sums, _ = continuation_logps(model, tokenizer, pairs, batch_size, label="labels")
    n = len(config.task.labels)
    return [sums[i:i + n] for i in range(0, len(sums), n)]


def check_row(record: dict, cfg: LabelWordsConfig) -> None:
    """What build_features needs of a row: its text(s) and a label (one of the labels, once known)."""
    read_texts(record, cfg)
    label = column(record, cfg.label_column, "label_words", "label_column")
    if cfg.labels:
        label_id(label, cfg.labels)


def make_trainer(parts: TrainerParts):
    """SFT training; every evaluation also scores the label words and reports accuracy/F1."""
    from tunesmith.metrics.classification import classification_scores

    config, tokenizer = parts.config, parts.tokenizer

    class LabelWordsTrainer(parts.trainer_class):
        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
            """Another eval set than the run's (a task of data.tasks, an earlier task) is scored on its own
            rows, its macro averages over its classes (the label set is the union of the tasks')."""
            metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
            rows = [(f["text"], f["text_pair"], f["label_id"]) for f in eval_dataset or parts.eval]
            if rows:
                scores = label_scores(self.model, tokenizer, config, [(t, p) for t, p, _ in rows],
                                      config.eval.batch_size)
                preds = [max(range(len(s)), key=s.__getitem__) for s in scores]
                golds = [g for _, _, g in rows]
                classes = sorted(set(golds)) if eval_dataset is not None else None
                found = classification_scores(preds, golds, config.task.labels, classes=classes)
                found = {f"{metric_key_prefix}_{k}": v for k, v in found.items()}
                self.log(found)
                metrics.update(found)
            return metrics

    return LabelWordsTrainer(model=parts.model, args=parts.arguments(), train_dataset=parts.train,
                             eval_dataset=parts.eval or None, data_collator=CausalLMCollator(tokenizer),
                             callbacks=parts.callbacks)


def predict(model, tokenizer, records: list[dict], config, batch_size: int = 16) -> tuple[list[dict], dict]:
    import math

    from tunesmith.metrics.classification import classification_scores

    cfg, report = config.task, RowsReport()
    kept = []
    for record in records:
        try:
            text, pair = read_texts(record, cfg)
            gold = record.get(cfg.label_column)
            kept.append((record, text, pair, label_id(gold, cfg.labels) if gold not in (None, "") else None))
        except ColumnError as err:
            bad_row(report, config, record, str(err))
    say_skipped(report, "input")
    scores = label_scores(model, tokenizer, config, [(t, p) for _, t, p, _ in kept], batch_size)
    rows = []
    for (record, text, _pair, gold), s in zip(kept, scores):
        top = max(s)
        probs = [math.exp(x - top) for x in s]
        probs = [p / sum(probs) for p in probs]  # normalised over the label words only
        best = max(range(len(s)), key=s.__getitem__)
        row = {"origin": record.get("_origin"), "text": text, "label": cfg.labels[best], "score": probs[best],
               "probabilities": dict(zip(cfg.labels, probs))}
        if gold is not None:
            row["reference"] = cfg.labels[gold]
        rows.append(row)
    golds = [g for *_, g in kept]
    metrics = {}
    if rows and all(g is not None for g in golds):
        metrics = classification_scores([cfg.labels.index(r["label"]) for r in rows], golds, cfg.labels)
    return rows, metrics


@register_task(LabelWordsConfig, "classification as generation: a chat LLM answers with label words",
               model_class=causal_lm_class, collator=CausalLMCollator, data_format="rows",
               make_trainer=make_trainer, predict=predict, check_row=check_row, learn=learn_labels,
               layouts=lambda cfg: columns_layout(cfg.text_column, cfg.text_pair_column, cfg.label_column))
def build_features(records: list[dict], tokenizer, config) -> tuple[list[dict], TokenizeReport]:
    cfg, report = config.task, RowsReport()
    learn_labels(records, cfg)
    template = get_template(config.data.template, tokenizer)
    features: list[dict] = []
    for record in records:
        try:
            text, pair = read_texts(record, cfg)
            gold = label_id(column(record, cfg.label_column, "label_words", "label_column"), cfg.labels)
        except ColumnError as err:
            bad_row(report, config, record, str(err))
            continue
        turns = with_system(messages(cfg, text, pair, cfg.labels[gold]), config.data.system)
        ids, labels = encode_segments(template.segments(turns, tokenizer), tokenizer)
        before = len(features)
        add_example(features, report, record.get("_origin", "?"), ids, labels, config.data.cutoff_len)
        if len(features) > before:  # kept: remember what eval scores against
            features[-1].update({"text": text, "text_pair": pair, "label_id": gold})
    say_skipped(report, "label_words")
    return features, report
