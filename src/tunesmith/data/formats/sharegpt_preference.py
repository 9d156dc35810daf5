"""LLaMA-Factory preference rows: ShareGPT `conversations` (from/value or role/content), or
alpaca `instruction` (+ `input`), with `chosen`/`rejected` replies (a message or text), + `system`."""

from __future__ import annotations

from tunesmith.data.formats import register_format
from tunesmith.data.preference import messages, preference_pair, reply


def detect(row: dict) -> bool:
    return ("conversations" in row or "instruction" in row) and ("chosen" in row or "rejected" in row)


@register_format("sharegpt-preference", "LLaMA-Factory: conversations or instruction + chosen/rejected",
                 detect=detect, priority=12, kind="preference",
                 example={"conversations": [{"from": "human", "value": "2 + 3?"}],
                          "chosen": {"from": "gpt", "value": "5"}, "rejected": {"from": "gpt", "value": "6"}})
def to_record(row: dict) -> dict:
    if "conversations" in row:
        prompt = messages(row["conversations"])
    else:
        prompt = [{"role": "user", "content": "\n\n".join(p for p in (row.get("instruction"), row.get("input")) if p)}]
    return preference_pair(row, prompt, reply(row.get("chosen")), reply(row.get("rejected")))
