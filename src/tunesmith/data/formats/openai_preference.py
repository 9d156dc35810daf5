"""OpenAI preference fine-tuning rows: {"input": {"messages"}, "preferred_output": [...],
"non_preferred_output": [...]}."""

from __future__ import annotations

from tunesmith.data.formats import register_format
from tunesmith.data.preference import messages, preference_pair, reply


def detect(row: dict) -> bool:
    return "preferred_output" in row or "non_preferred_output" in row


@register_format("openai-preference", "OpenAI DPO: input.messages + preferred_output/non_preferred_output",
                 detect=detect, priority=10, kind="preference",
                 example={"input": {"messages": [{"role": "user", "content": "2 + 3?"}]},
                          "preferred_output": [{"role": "assistant", "content": "5"}],
                          "non_preferred_output": [{"role": "assistant", "content": "6"}]})
def to_record(row: dict) -> dict:
    prompt = messages((row.get("input") or {}).get("messages", []))
    return preference_pair(row, prompt, reply(row.get("preferred_output")), reply(row.get("non_preferred_output")))
