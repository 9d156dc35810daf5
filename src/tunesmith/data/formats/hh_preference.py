"""Anthropic HH-RLHF rows: `chosen`/`rejected` full transcripts ("\\n\\nHuman: ... \\n\\nAssistant: ...")
that share everything before their last Assistant turn."""

from __future__ import annotations

import re

from tunesmith.data.formats import register_format
from tunesmith.data.preference import preference_pair
from tunesmith.data.records import RowError

_TURN = re.compile(r"\n\n(Human|Assistant): ?")


def detect(row: dict) -> bool:
    return isinstance(row.get("chosen"), str) and isinstance(row.get("rejected"), str)


def _split(transcript: str) -> tuple[list[dict], str]:
    parts = _TURN.split(transcript if transcript.startswith("\n\n") else "\n\n" + transcript.lstrip("\n"))
    turns = [{"role": "user" if who == "Human" else "assistant", "content": body.strip()}
             for who, body in zip(parts[1::2], parts[2::2])]
    if len(turns) < 2 or turns[-1]["role"] != "assistant":
        raise RowError("an HH transcript must end with an \"Assistant:\" turn")
    return turns[:-1], turns[-1]["content"]


@register_format("hh-preference", "HH-RLHF: chosen/rejected full Human/Assistant transcripts",
                 detect=detect, priority=14, kind="preference",
                 example={"chosen": "\n\nHuman: 2 + 3?\n\nAssistant: 5",
                          "rejected": "\n\nHuman: 2 + 3?\n\nAssistant: 6"})
def to_record(row: dict) -> dict:
    prompt, chosen = _split(row["chosen"])
    prompt_rejected, rejected = _split(row["rejected"])
    if prompt != prompt_rejected:
        raise RowError("the chosen and rejected transcripts differ before their last Assistant turn")
    return preference_pair(row, prompt, chosen, rejected)
