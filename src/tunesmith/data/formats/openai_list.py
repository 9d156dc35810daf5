"""Bare message lists: every row is [{role, content}, ...] with no `messages` key around it
(chat exports that write one conversation per line). Read exactly as OpenAI chat rows."""

from __future__ import annotations

from tunesmith.data.formats import openai, register_format


def detect(row: list) -> bool:
    return bool(row) and all(isinstance(m, dict) and "role" in m for m in row)


@register_format("openai-list", "a bare list of OpenAI messages per row: [{role, content}, ...]", detect=detect,
                 priority=15, accepts=list,
                 example=[{"role": "user", "content": "2 + 3?"}, {"role": "assistant", "content": "5"}])
def to_record(row: list) -> dict:
    return openai.to_record({"messages": row})
