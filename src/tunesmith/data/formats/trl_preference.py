"""TRL preference rows: {"prompt": text or messages, "chosen": ..., "rejected": ...} (text or messages)."""

from __future__ import annotations

from tunesmith.data.formats import register_format
from tunesmith.data.preference import messages, preference_pair, reply


def detect(row: dict) -> bool:
    return "prompt" in row and ("chosen" in row or "rejected" in row)


@register_format("preference", "TRL: prompt + chosen/rejected (text or messages)",
                 detect=detect, priority=13, kind="preference",
                 example={"prompt": [{"role": "user", "content": "2 + 3?"}],
                          "chosen": [{"role": "assistant", "content": "5"}],
                          "rejected": [{"role": "assistant", "content": "6"}]})
def to_record(row: dict) -> dict:
    return preference_pair(row, messages(row["prompt"]), reply(row.get("chosen")), reply(row.get("rejected")))
