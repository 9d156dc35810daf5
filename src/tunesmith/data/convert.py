"""Convert rows between alpaca, sharegpt, OpenAI chat, text and preference formats.

Supervised rows go through the canonical record (so every format reader's checks apply)
and are written back out in the target's shape. Preference rows (a prompt with a chosen
and a rejected answer) are read from TRL, LLaMA-Factory and OpenAI DPO layouts.
"""

from __future__ import annotations

from typing import Callable

from tunesmith.data.load import BadRow, LoadReport, rows_to_records
from tunesmith.data.records import ORIGIN, RowError, check_conversation
from tunesmith.errors import DataError

SFT_TARGETS = ("openai", "sharegpt", "alpaca", "text")
PREFERENCE_TARGETS = ("preference", "sharegpt-preference", "openai-preference")
TARGETS = SFT_TARGETS + PREFERENCE_TARGETS
SPEAKER = {"user": "human", "assistant": "gpt", "system": "system", "tool": "observation"}


def convert_rows(rows: list[dict], to: str, fmt: str = "auto", on_bad_row: str = "error",
                 report: LoadReport | None = None) -> list[dict]:
    if to not in TARGETS:
        raise DataError(f"unknown target format {to!r}; use one of {', '.join(TARGETS)}")
    report = report or LoadReport()
    if to in PREFERENCE_TARGETS:
        return [_keep(row, WRITE_PREFERENCE[to](*read_preference(row))) for row in _good(rows, report, on_bad_row)]
    records = rows_to_records(rows, fmt, on_bad_row, report)
    out = []
    for record in records:
        try:
            out.append(_keep(record, WRITE[to](record)))
        except RowError as err:
            if on_bad_row == "error":
                raise DataError(f"{record[ORIGIN]}: cannot write as {to}: {err}") from None
            report.bad_rows.append(BadRow(record[ORIGIN], f"cannot write as {to}: {err}"))
    return out


def _keep(source: dict, row: dict) -> dict:
    return {**row, ORIGIN: source.get(ORIGIN, "?")}


def _good(rows, report, on_bad_row):
    for row in rows:
        try:
            read_preference(row)
            yield row
        except RowError as err:
            if on_bad_row == "error":
                raise DataError(f"{row.get(ORIGIN, '?')}: {err}") from None
            report.bad_rows.append(BadRow(row.get(ORIGIN, "?"), str(err)))


def to_openai(r: dict) -> dict:
    out = {"messages": [{k: v for k, v in m.items()} for m in r["messages"]]}
    return {**out, "tools": r["tools"]} if r.get("tools") else out


def to_sharegpt(r: dict) -> dict:
    messages = r["messages"]
    out: dict = {}
    if messages[0]["role"] == "system":
        out["system"], messages = messages[0]["content"], messages[1:]
    out["conversations"] = [{"from": SPEAKER[m["role"]], "value": m["content"]} for m in messages]
    return {**out, "tools": r["tools"]} if r.get("tools") else out


def to_alpaca(r: dict) -> dict:
    messages = r["messages"]
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    turns = [m for m in messages if m["role"] != "system"]
    if any(m["role"] == "tool" for m in turns) or len(turns) % 2:
        raise RowError("alpaca holds user/assistant pairs only (tool turns or an odd turn count)")
    pairs = [[turns[i]["content"], turns[i + 1]["content"]] for i in range(0, len(turns), 2)]
    out = {"instruction": pairs[-1][0], "input": "", "output": pairs[-1][1]}
    if system:
        out["system"] = system
    if len(pairs) > 1:
        out["history"] = pairs[:-1]
    return out


def to_text(r: dict) -> dict:
    if "text" in r:
        return {"text": r["text"]}
    return {"text": "\n\n".join(m["content"] for m in r["messages"])}


WRITE: dict[str, Callable[[dict], dict]] = {
    "openai": to_openai, "sharegpt": to_sharegpt, "alpaca": to_alpaca, "text": to_text,
}


# --- preference rows ------------------------------------------------------------------------
def read_preference(row: dict) -> tuple[list[dict], dict, dict]:
    """(prompt messages, chosen message, rejected message) from any supported layout."""
    if "conversations" in row and "chosen" in row:  # LLaMA-Factory sharegpt preference
        prompt = [{"role": _role(t.get("from")), "content": t.get("value", "")} for t in row["conversations"]]
        if row.get("system"):
            prompt.insert(0, {"role": "system", "content": row["system"]})
        chosen, rejected = (_answer(row[k].get("value") if isinstance(row[k], dict) else row[k]) for k in ("chosen", "rejected"))
    elif "chosen_messages" in row:  # LLaMA-Factory v1 (content as a list of parts)
        full = [{"role": m["role"], "content": _parts(m["content"])} for m in row["chosen_messages"]]
        prompt, chosen = full[:-1], full[-1]
        rejected = {"role": "assistant", "content": _parts(row["rejected_messages"][-1]["content"])}
    elif "preferred_output" in row:  # OpenAI DPO
        prompt = row.get("input", {}).get("messages", [])
        chosen, rejected = row["preferred_output"][-1], row["non_preferred_output"][-1]
    elif {"prompt", "chosen", "rejected"} <= set(row):  # TRL (strings or message lists)
        prompt = row["prompt"] if isinstance(row["prompt"], list) else [{"role": "user", "content": row["prompt"]}]
        chosen, rejected = (row[k][-1] if isinstance(row[k], list) else _answer(row[k]) for k in ("chosen", "rejected"))
    else:
        raise RowError("not a preference row (need prompt/chosen/rejected, conversations+chosen+rejected, "
                       "chosen_messages/rejected_messages or input/preferred_output/non_preferred_output)")
    check_conversation(prompt + [chosen])
    return prompt, chosen, rejected


def _role(speaker) -> str:
    return {"human": "user", "gpt": "assistant", "observation": "tool"}.get(speaker, speaker)


def _answer(text) -> dict:
    if not isinstance(text, str):
        raise RowError("chosen/rejected answers must be text")
    return {"role": "assistant", "content": text}


def _parts(content) -> str:
    return content if isinstance(content, str) else "".join(p.get("value") or p.get("text") or "" for p in content)


def _trl(prompt, chosen, rejected) -> dict:
    return {"prompt": prompt, "chosen": [chosen], "rejected": [rejected]}


def _sharegpt_pref(prompt, chosen, rejected) -> dict:
    out = to_sharegpt({"messages": prompt})
    return {**out, "chosen": {"from": "gpt", "value": chosen["content"]},
            "rejected": {"from": "gpt", "value": rejected["content"]}}


def _openai_pref(prompt, chosen, rejected) -> dict:
    return {"input": {"messages": prompt}, "preferred_output": [{"role": "assistant", "content": chosen["content"]}],
            "non_preferred_output": [{"role": "assistant", "content": rejected["content"]}]}


WRITE_PREFERENCE = {"preference": _trl, "sharegpt-preference": _sharegpt_pref, "openai-preference": _openai_pref}
