"""Supervised fine-tuning on conversations: loss on assistant turns only (by default)."""

from __future__ import annotations

from typing import Literal

from tunesmith.config.components import TaskConfig
from tunesmith.data.formats import layouts
from tunesmith.data.records import LayoutError, origin
from tunesmith.data.templates import get_template, render_segments, with_system
from tunesmith.data.tokenize import TokenizeReport, add_example, encode_segments
from tunesmith.errors import DataError
from tunesmith.tasks import register_task
from tunesmith.tasks.collate import CausalLMCollator, causal_lm_class

__all__ = ["SftConfig", "build_features", "with_system"]  # with_system: kept here for older imports


class SftConfig(TaskConfig):
    name: Literal["sft"] = "sft"


def check_row(record: dict, cfg) -> None:
    if "messages" not in record:
        raise LayoutError("task sft needs conversations, but this row is plain text; "
                          "use task.name=pretrain for continued pretraining")


@register_task(SftConfig, "chat / instruction tuning on conversations",
               model_class=causal_lm_class, collator=CausalLMCollator, reads="messages", check_row=check_row,
               layouts=lambda cfg: layouts("record", without=("text",)))
def build_features(records: list[dict], tokenizer, config) -> tuple[list[dict], TokenizeReport]:
    template = get_template(config.data.template, tokenizer)
    report = TokenizeReport()
    features: list[dict] = []
    for record in records:
        if "messages" not in record:
            raise DataError(
                f"{origin(record)}: task sft needs conversations, but this row is plain text; "
                "use task.name=pretrain for continued pretraining"
            )
        segments = render_segments(template, tokenizer, record["messages"], config.data.system, record.get("tools"))
        ids, labels = encode_segments(segments, tokenizer, config.data.train_on_prompt)
        add_example(features, report, origin(record), ids, labels, config.data.cutoff_len)
    return features, report
