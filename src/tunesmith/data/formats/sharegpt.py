"""ShareGPT rows: {"conversations": [{"from": human|gpt|system|..., "value": ...}], "system"?, "tools"?}."""

from __future__ import annotations

from tunesmith.data.formats import register_format
from tunesmith.data.records import RowError, chat_record, require_str

ROLE_OF = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "system": "system",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
}


def detect(row: dict) -> bool:
    return isinstance(row.get("conversations"), list)


@register_format("sharegpt", "ShareGPT: conversations [{from, value}] (+ system, tools)", detect=detect, priority=20,
                 example={"conversations": [{"from": "human", "value": "2 + 3?"}, {"from": "gpt", "value": "5"}],
                          "system": "You are terse."})
def to_record(row: dict) -> dict:
    turns = row.get("conversations")
    if not isinstance(turns, list):
        raise RowError("field 'conversations' must be a list of {from, value} objects")
    messages = []
    system = require_str(row, "system", optional=True)
    if system.strip():
        messages.append({"role": "system", "content": system})
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RowError(f"turn {i} is not an object")
        speaker = turn.get("from")
        if speaker not in ROLE_OF:
            raise RowError(f"turn {i} is from unknown speaker {speaker!r}; use one of {', '.join(ROLE_OF)}")
        value = turn.get("value")
        if not isinstance(value, str):
            raise RowError(f"turn {i} has no text 'value'")
        messages.append({"role": ROLE_OF[speaker], "content": value})
    tools = row.get("tools")
    return chat_record(messages, tools if isinstance(tools, str) and tools.strip() else None)
