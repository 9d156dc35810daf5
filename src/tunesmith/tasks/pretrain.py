"""Continued pretraining on plain text: every token trains; long texts become several blocks."""

from __future__ import annotations

from typing import Literal

from tunesmith.config.components import TaskConfig
from tunesmith.data.records import LayoutError, origin
from tunesmith.data.tokenize import TokenizeReport, add_example
from tunesmith.errors import DataError
from tunesmith.tasks import register_task
from tunesmith.tasks.collate import CausalLMCollator, causal_lm_class


class PretrainConfig(TaskConfig):
    name: Literal["pretrain"] = "pretrain"


def check_row(record: dict, cfg) -> None:
    if "text" not in record:
        raise LayoutError("task pretrain needs {text} rows; use task.name=sft for chats")


@register_task(PretrainConfig, "continued pretraining on plain text",
               model_class=causal_lm_class, collator=CausalLMCollator, reads="text", check_row=check_row,
               layouts=lambda cfg: "{text} rows (json, jsonl, csv, parquet) or a .txt file, one text per line")
def build_features(records: list[dict], tokenizer, config) -> tuple[list[dict], TokenizeReport]:
    report = TokenizeReport()
    features: list[dict] = []
    block = config.data.cutoff_len
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for record in records:
        text = record.get("text")
        if text is None:
            raise DataError(f"{origin(record)}: task pretrain needs {{text}} rows; use task.name=sft for chats")
        ids = tokenizer(text, add_special_tokens=False)["input_ids"] + eos
        # Long documents are split into blocks rather than truncated: no text is lost.
        for start in range(0, len(ids), block):
            piece = ids[start:start + block]
            if len(piece) > 1:
                add_example(features, report, origin(record), piece, list(piece), block)
    return features, report
