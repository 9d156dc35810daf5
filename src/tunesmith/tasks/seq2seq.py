"""Sequence-to-sequence (T5, BART, mT5 ...): summarisation, translation and other text -> text.

Rows give a source and a target column. Eval generates from every eval source (greedy or beam
search) and scores the outputs against the targets with ROUGE-1/2/L and BLEU, besides the loss.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import TaskConfig
from tunesmith.tasks import TrainerParts, register_task
from tunesmith.tasks.rows import ColumnError, RowsReport, bad_row, column, columns_layout, say_skipped


class Seq2SeqConfig(TaskConfig):
    name: Literal["seq2seq"] = "seq2seq"
    source_column: str = Field("source", description="Column with the input text (dialogue, article, ...).")
    target_column: str = Field("target", description="Column with the output text (summary, translation).")
    prefix: str = Field("", description="Text put before every source, e.g. 'summarize: ' for T5.")
    max_target_length: int = Field(128, gt=0, description="Longest target in tokens; longer ones are cut.")
    max_new_tokens: int = Field(128, gt=0, description="Longest generated output at eval and predict.")
    num_beams: int = Field(1, gt=0, description="Beam search width at eval and predict (1: greedy).")


def model_class():
    from transformers import AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM


def collator(tokenizer):
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)


def _source(record: dict, cfg) -> str:
    return cfg.prefix + str(column(record, cfg.source_column, "seq2seq", "source_column"))


def check_row(record: dict, cfg: Seq2SeqConfig) -> None:
    _source(record, cfg)
    column(record, cfg.target_column, "seq2seq", "target_column")


def rouge_bleu(predictions: list[str], references: list[str]) -> dict[str, float]:
    """ROUGE-1/2/L F1 (0-1) and corpus BLEU (0-100) from the metric registry (CJK-aware)."""
    from tunesmith.metrics import METRICS

    scores: dict[str, float] = {}
    for name in ("rouge", "bleu") if predictions else ():
        result = METRICS.get(name).compute(predictions, references)
        scores.update({k: float(v) for k, v in result.items() if k != "rows"})
    return scores


class GenerationScores:
    """compute_metrics for generated ids: decode, then ROUGE and BLEU against the targets."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, prediction) -> dict:
        import numpy as np

        pad = self.tokenizer.pad_token_id
        preds = np.where(prediction.predictions < 0, pad, prediction.predictions)
        labels = np.where(prediction.label_ids < 0, pad, prediction.label_ids)

        def decode(ids):
            return [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]

        return rouge_bleu(decode(preds), decode(labels))


def make_trainer(parts: TrainerParts):
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments

    cfg = parts.config.task
    args = parts.arguments(Seq2SeqTrainingArguments, predict_with_generate=True,
                           generation_max_length=cfg.max_new_tokens, generation_num_beams=cfg.num_beams)
    return Seq2SeqTrainer(
        model=parts.model, args=args, train_dataset=parts.train, eval_dataset=parts.eval or None,
        data_collator=collator(parts.tokenizer), processing_class=parts.tokenizer, callbacks=parts.callbacks,
        compute_metrics=GenerationScores(parts.tokenizer),
    )


def predict(model, tokenizer, records: list[dict], config, batch_size: int = 8) -> tuple[list[dict], dict]:
    """Generate an output for each source; ROUGE/BLEU when rows have targets."""
    import torch

    from tunesmith.utils.progress import progress

    cfg, report = config.task, RowsReport()
    kept = []
    for record in records:
        try:
            kept.append((record, _source(record, cfg)))
        except ColumnError as err:
            bad_row(report, config, record, str(err))
    say_skipped(report, "input")
    outputs: list[str] = []
    with progress("generate", len(kept)) as advance, torch.no_grad():
        for start in range(0, len(kept), batch_size):
            sources = [s for _, s in kept[start:start + batch_size]]
            batch = tokenizer(sources, return_tensors="pt", padding=True, truncation=True,
                              max_length=config.data.cutoff_len)
            ids = model.generate(**batch, max_new_tokens=cfg.max_new_tokens, num_beams=cfg.num_beams)
            outputs += [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
            advance(len(sources))
    rows = []
    for (record, source), output in zip(kept, outputs):
        row = {"origin": record.get("_origin"), "source": source, "prediction": output}
        if record.get(cfg.target_column):
            row["reference"] = str(record[cfg.target_column])
        rows.append(row)
    scored = rows and all("reference" in r for r in rows)
    return rows, rouge_bleu([r["prediction"] for r in rows], [r["reference"] for r in rows]) if scored else {}


@register_task(Seq2SeqConfig, "encoder-decoder text to text (summarisation, translation) with ROUGE/BLEU eval",
               model_class=model_class, collator=collator, data_format="rows", make_trainer=make_trainer,
               predict=predict, check_row=check_row,
               layouts=lambda cfg: columns_layout(cfg.source_column, cfg.target_column))
def build_features(records: list[dict], tokenizer, config) -> tuple[list[dict], RowsReport]:
    cfg, report = config.task, RowsReport()
    features = []
    for record in records:
        try:
            source = _source(record, cfg)
            target = str(column(record, cfg.target_column, "seq2seq", "target_column"))
        except ColumnError as err:
            bad_row(report, config, record, str(err))
            continue
        feature = dict(tokenizer(source, truncation=True, max_length=config.data.cutoff_len))
        labels = tokenizer(text_target=target, truncation=True, max_length=cfg.max_target_length)
        feature["labels"] = labels["input_ids"]
        report.count(feature["input_ids"], config.data.cutoff_len, record.get("_origin", "?"))
        features.append(feature)
    say_skipped(report, "seq2seq")
    return features, report
