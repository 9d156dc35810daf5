"""Alpaca rows: instruction, input, output, optional system and history [[user, assistant], ...]."""

from __future__ import annotations

from tunesmith.data.formats import register_format
from tunesmith.data.records import RowError, chat_record, require_str


def detect(row: dict) -> bool:
    return "instruction" in row and "output" in row


@register_format("alpaca", "instruction / input / output (+ system, history)", detect=detect, priority=30,
                 example={"instruction": "Add the numbers.", "input": "2 and 3", "output": "5",
                          "system": "You are terse.", "history": [["hi", "hello"]]})
def to_record(row: dict) -> dict:
    instruction = require_str(row, "instruction")
    extra = require_str(row, "input", optional=True)
    output = require_str(row, "output")
    system = require_str(row, "system", optional=True)
    messages = [{"role": "system", "content": system}] if system.strip() else []
    for turn in _history(row.get("history")):
        messages += [{"role": "user", "content": turn[0]}, {"role": "assistant", "content": turn[1]}]
    prompt = f"{instruction}\n{extra}" if extra.strip() else instruction
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]
    return chat_record(messages)


def _history(history) -> list:
    if history in (None, ""):
        return []
    ok = isinstance(history, list) and all(
        isinstance(t, (list, tuple)) and len(t) == 2 and all(isinstance(x, str) for x in t)
        for t in history
    )
    if not ok:
        raise RowError("field 'history' must be a list of [user, assistant] text pairs")
    return history
