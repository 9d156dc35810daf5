"""LLaMA-Factory v1 preference rows: {"chosen_messages": [...], "rejected_messages": [...]}, the
shared turns then the two replies (content as text or a list of parts)."""

from __future__ import annotations

from tunesmith.data.formats import register_format
from tunesmith.data.preference import messages, preference_pair, reply
from tunesmith.data.records import RowError


def detect(row: dict) -> bool:
    return "chosen_messages" in row


@register_format("llamafactory-v1-preference", "LLaMA-Factory v1: chosen_messages/rejected_messages",
                 detect=detect, priority=11, kind="preference",
                 example={"chosen_messages": [{"role": "user", "content": "2 + 3?"},
                                                      {"role": "assistant", "content": "5"}],
                          "rejected_messages": [{"role": "user", "content": "2 + 3?"},
                                                {"role": "assistant", "content": "6"}]})
def to_record(row: dict) -> dict:
    chosen, rejected = messages(row["chosen_messages"]), messages(row.get("rejected_messages"))
    if rejected[:-1] != chosen[:-1]:
        raise RowError("chosen_messages and rejected_messages differ before their last turn")
    return preference_pair(row, chosen[:-1], reply(chosen[-1:]), reply(rejected[-1:]))
