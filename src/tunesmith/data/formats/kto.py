"""TRL unpaired preference rows (KTO): {"prompt": text or messages, "completion": text or messages,
"label": true|false}; `conversations` may stand for the prompt."""

from __future__ import annotations

from tunesmith.data.formats import register_format
from tunesmith.data.preference import kto_record, messages, reply


def detect(row: dict) -> bool:
    return "completion" in row


@register_format("kto", "TRL unpaired: prompt + completion + label true/false", detect=detect, priority=10,
                 kind="kto", example={"prompt": [{"role": "user", "content": "2 + 3?"}],
                                      "completion": [{"role": "assistant", "content": "5"}], "label": True})
def to_record(row: dict) -> dict:
    return kto_record(row, messages(row.get("prompt", row.get("conversations"))), reply(row.get("completion")))
