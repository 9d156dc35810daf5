"""LLaMA-Factory KTO rows (kto_en_demo.json): {"messages": [...], "label": true|false}, the
conversation ending with the reply that the label marks desirable or undesirable."""

from __future__ import annotations

from tunesmith.data.formats import register_format
from tunesmith.data.preference import kto_record, messages
from tunesmith.data.records import RowError


def detect(row: dict) -> bool:
    return isinstance(row.get("messages"), list) and "label" in row


@register_format("llamafactory-kto", "LLaMA-Factory KTO: messages ending with the reply + label true/false",
                 detect=detect, priority=11, kind="kto",
                 example={"messages": [{"role": "user", "content": "2 + 3?"},
                                       {"role": "assistant", "content": "6"}], "label": False})
def to_record(row: dict) -> dict:
    turns = messages(row["messages"])
    if not turns or turns[-1]["role"] != "assistant":
        raise RowError("the messages must end with the assistant reply that `label` judges")
    return kto_record(row, turns[:-1], turns[-1]["content"])
