"""OpenAI chat rows: {"messages": [{role, content, weight?, tool_calls?}], "tools"?}."""

from __future__ import annotations

import json

from tunesmith.data.formats import register_format
from tunesmith.data.records import ROLES, RowError, chat_record
from tunesmith.data.templates import tools_text

MESSAGE_KEYS = {"role", "content", "weight", "tool_calls", "tool_call_id", "name", "function_call"}


def detect(row: dict) -> bool:
    return isinstance(row.get("messages"), list)


@register_format("openai", "OpenAI chat: messages [{role, content, weight}] (+ tools)", detect=detect, priority=10,
                 example={"messages": [{"role": "system", "content": "You are terse."},
                                       {"role": "user", "content": "2 + 3?"},
                                       {"role": "assistant", "content": "5"}]})
def to_record(row: dict) -> dict:
    messages = row.get("messages")
    if not isinstance(messages, list):
        raise RowError("field 'messages' must be a list of {role, content} objects")
    out = [_message(i, m) for i, m in enumerate(messages)]
    tools = row.get("tools") or row.get("functions")
    return chat_record(out, tools_text(tools))


def _message(i: int, m: object) -> dict:
    if not isinstance(m, dict):
        raise RowError(f"message {i} is not an object")
    role = m.get("role")
    if role not in ROLES:
        raise RowError(f"message {i} has unknown role {role!r}; use one of {', '.join(ROLES)}")
    unknown = set(m) - MESSAGE_KEYS
    if unknown:
        raise RowError(f"message {i} has unknown key(s) {', '.join(sorted(unknown))}")
    message = {"role": role, "content": m.get("content") if m.get("content") is not None else ""}
    if "weight" in m:
        if m["weight"] not in (0, 1) or role != "assistant":
            raise RowError(f"message {i}: 'weight' must be 0 or 1 and only on assistant messages")
        message["weight"] = int(m["weight"])
    if m.get("tool_calls"):
        message["tool_calls"] = m["tool_calls"]
        if not message["content"]:
            message["content"] = json.dumps(m["tool_calls"], ensure_ascii=False)
    if not isinstance(message["content"], str):
        raise RowError(f"message {i} content must be text")
    return message
