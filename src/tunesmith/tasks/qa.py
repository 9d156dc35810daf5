"""Extractive question answering: predict the answer span inside the context.

Long contexts are cut into overlapping windows (`doc_stride` tokens of overlap) using the
tokenizer's offset mapping; a window without the answer points at token 0 (no answer here).
Decoding takes the n best starts and ends of every window, keeps spans inside the context and
at most `max_answer_length` tokens long, and maps the best back to context characters.
Scores: SQuAD exact match and F1 (metrics/squad.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from tunesmith.config.components import TaskConfig
from tunesmith.data.records import RowError
from tunesmith.errors import ConfigError
from tunesmith.tasks import TrainerParts, register_task
from tunesmith.tasks.heads import train_task_head
from tunesmith.tasks.qa_examples import expand_rows, qa_example
from tunesmith.tasks.rows import RowsReport, bad_row, say_skipped
from tunesmith.utils.io import write_json


class QaConfig(TaskConfig):
    name: Literal["qa"] = "qa"
    question_column: str = Field("question", description="Field with the question (flat rows).")
    context_column: str = Field("context", description="Field with the passage that holds the answer.")
    answers_column: str = Field("answers", description="Field with the gold answers (flat rows).")
    doc_stride: int = Field(128, gt=0, description="Tokens shared by consecutive windows of a long context.")
    max_answer_length: int = Field(30, gt=0, description="Longest answer span, in tokens.")
    n_best: int = Field(20, gt=0, description="Start and end candidates tried per window.")
    max_question_length: int = Field(64, gt=0, description="Longer questions are cut to this many tokens.")
    allow_no_answer: bool = Field(
        False, description="SQuAD v2: answer nothing when the no-answer score beats the best span.")


def read_examples(records: list[dict], config, report: RowsReport, need_answers: bool = True) -> list[dict]:
    examples = []
    for record in records:
        for where, row in expand_rows(record):
            row.pop("_origin", None)
            try:
                example = qa_example(row, config.task, need_answers)
            except RowError as err:
                bad_row(report, config, {"_origin": where}, str(err))
                continue
            example["origin"] = where
            examples.append(example)
    return examples


def windows(examples: list[dict], tokenizer, config) -> list[dict]:
    """Token windows of each example with start/end positions, its example and context offsets."""
    features = []
    for example in examples:
        features += _example_windows(example, tokenizer, config)
    return features


def _example_windows(example: dict, tokenizer, config) -> list[dict]:
    cfg, cutoff = config.task, config.data.cutoff_len
    question_ids = tokenizer(example["question"], add_special_tokens=False)["input_ids"]
    question = example["question"]
    if len(question_ids) > cfg.max_question_length:  # a runaway question must not crowd out the context
        question = tokenizer.decode(question_ids[: cfg.max_question_length])
    room = cutoff - min(len(question_ids), cfg.max_question_length) - tokenizer.num_special_tokens_to_add(pair=True)
    if room < 8:
        raise ConfigError(f"data.cutoff_len={cutoff} leaves {room} tokens for the context after the question; "
                          "raise data.cutoff_len or lower task.max_question_length")
    stride = min(cfg.doc_stride, room // 2)  # the tokenizer needs the overlap below the context room
    enc = tokenizer(question, example["context"], truncation="only_second", max_length=cutoff, stride=stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True)
    out = []
    for i, offsets in enumerate(enc["offset_mapping"]):
        sequence = enc.sequence_ids(i)
        context_offsets = [o if s == 1 else None for o, s in zip(offsets, sequence)]
        start, end = _positions(example, context_offsets)
        feature = {k: enc[k][i] for k in enc if k not in ("offset_mapping", "overflow_to_sample_mapping")}
        out.append({**feature, "start_positions": start, "end_positions": end, "example": example,
                    "offsets": context_offsets})
    return out


def _positions(example: dict, offsets: list) -> tuple[int, int]:
    """Token span of the first gold answer in this window, or (0, 0) when it is not inside."""
    if not example["answers"]:
        return 0, 0
    first, last = example["starts"][0], example["starts"][0] + len(example["answers"][0])
    inside = [i for i, o in enumerate(offsets) if o is not None]
    if not inside or offsets[inside[0]][0] > first or offsets[inside[-1]][1] < last:
        return 0, 0
    start = next(i for i in inside if offsets[i][1] > first)
    end = next(i for i in reversed(inside) if offsets[i][0] < last)
    return start, end


class QaCollator:
    """Pads model inputs; keeps decoding-only fields (example index, offsets) out of the batch."""

    KEEP = ("input_ids", "attention_mask", "token_type_ids", "start_positions", "end_positions")

    def __init__(self, tokenizer):
        from transformers import DataCollatorWithPadding

        self.pad = DataCollatorWithPadding(tokenizer)

    def __call__(self, features: list[dict]) -> dict:
        return self.pad([{k: f[k] for k in self.KEEP if k in f} for f in features])


def examples_of(features: list[dict]) -> list[dict]:
    """The examples behind the windows, each once, in order (windows share their example object)."""
    return list({id(f["example"]): f["example"] for f in features}.values())


def decode(examples: list[dict], features: list[dict], start_logits, end_logits, cfg) -> list[tuple[str, float]]:
    """(answer text, score) per example from the n best spans over all its windows."""
    position = {id(e): i for i, e in enumerate(examples)}
    best: dict[int, tuple[str, float]] = {}
    null: dict[int, float] = {}
    for feature, starts, ends in zip(features, start_logits, end_logits):
        index, offsets = position[id(feature["example"])], feature["offsets"]
        n = len(offsets)
        starts, ends = np.asarray(starts[:n]), np.asarray(ends[:n])
        null[index] = min(null.get(index, np.inf), float(starts[0] + ends[0]))
        for s in np.argsort(starts)[::-1][: cfg.n_best]:
            for e in np.argsort(ends)[::-1][: cfg.n_best]:
                if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > cfg.max_answer_length:
                    continue
                score = float(starts[s] + ends[e])
                if index not in best or score > best[index][1]:
                    context = examples[index]["context"]
                    best[index] = (context[offsets[s][0]:offsets[e][1]], score)
    out = []
    for i in range(len(examples)):
        text, score = best.get(i, ("", float("-inf")))
        if cfg.allow_no_answer and null.get(i, float("-inf")) > score:
            text, score = "", null[i]
        out.append((text, score))
    return out


class QaEval:
    """compute_metrics: decode the eval windows back to answers and score them (SQuAD EM/F1)."""

    def __init__(self, features: list[dict], cfg, run_dir: Path, save: bool = True):
        self.examples, self.features, self.cfg, self.run_dir = examples_of(features), features, cfg, Path(run_dir)
        self.save = save  # qa_eval_predictions.json: the run's own eval set's

    def __call__(self, prediction) -> dict:
        from tunesmith.metrics.squad import squad_scores

        start_logits, end_logits = prediction.predictions[:2]
        answers = decode(self.examples, self.features, start_logits, end_logits, self.cfg)
        scores = squad_scores([a for a, _ in answers], [e["answers"] for e in self.examples])
        if self.save:
            write_json(self.run_dir / "qa_eval_predictions.json",
                       [{"origin": e["origin"], "question": e["question"], "prediction": a,
                         "answers": e["answers"]} for e, (a, _) in zip(self.examples, answers)])
        return scores


def model_class():
    from transformers import AutoModelForQuestionAnswering

    return AutoModelForQuestionAnswering


def make_trainer(parts: TrainerParts):
    train_task_head(parts.model)  # freeze tuning must not freeze the fresh head
    metrics = QaEval(parts.eval, parts.config.task, parts.run_dir) if parts.eval else None
    trainer = parts.trainer_class(
        model=parts.model, args=parts.arguments(label_names=["start_positions", "end_positions"]),
        train_dataset=parts.train, eval_dataset=parts.eval or None, data_collator=QaCollator(parts.tokenizer),
        callbacks=parts.callbacks, compute_metrics=metrics,
    )
    # another eval set than the run's (a task of data.tasks, an earlier task's): its own windows and answers
    trainer.metrics_for = lambda features: QaEval(features, parts.config.task, parts.run_dir, save=False)
    return trainer


def predict(model, tokenizer, records: list[dict], config, batch_size: int = 16) -> tuple[list[dict], dict]:
    from tunesmith.metrics.squad import squad_scores
    from tunesmith.tasks.batching import batched_outputs

    report = RowsReport()
    examples = read_examples(records, config, report, need_answers=False)
    say_skipped(report, "QA")
    features = windows(examples, tokenizer, config) if examples else []
    starts, ends = [], []
    for _, out in batched_outputs(model, QaCollator(tokenizer), features, batch_size):
        starts += list(out.start_logits.float().cpu().numpy())
        ends += list(out.end_logits.float().cpu().numpy())
    answers = decode(examples, features, starts, ends, config.task)
    rows = [{"origin": e["origin"], "id": e["id"], "question": e["question"], "answer": a, "score": s,
             **({"references": e["answers"]} if e["has_references"] else {})}
            for e, (a, s) in zip(examples, answers)]
    scored = [e["has_references"] for e in examples]
    metrics = squad_scores([a for a, _ in answers], [e["answers"] for e in examples]) if rows and all(scored) else {}
    return rows, metrics


def check_row(record: dict, cfg: QaConfig) -> None:
    qa_example({k: v for k, v in record.items() if k != "_origin"}, cfg)


def layouts(cfg: QaConfig) -> str:
    return (f"a SQuAD json file (data -> paragraphs -> context + qas), or rows with {cfg.question_column!r}, "
            f"{cfg.context_column!r} and {cfg.answers_column!r} columns (answers as text, a list, or "
            "{text, answer_start})")


def expand_records(records: list[dict]) -> list[dict]:
    """A SQuAD file is one row holding every question; make it one record per question, so
    data.eval_ratio and data.max_rows count questions."""
    return [{**row, "_origin": where} for record in records for where, row in expand_rows(record)]


@register_task(QaConfig, "extractive question answering (SQuAD v1/v2, doc stride, n-best spans)",
               model_class=model_class, collator=QaCollator, data_format="rows", make_trainer=make_trainer,
               predict=predict, expand_records=expand_records, check_row=check_row, layouts=layouts)
def build_features(records: list[dict], tokenizer, config) -> tuple[list[dict], RowsReport]:
    report = RowsReport()
    examples = read_examples(records, config, report)
    say_skipped(report, "QA")
    features = windows(examples, tokenizer, config) if examples else []
    for f in features:
        report.count(f["input_ids"])
    return features, report

