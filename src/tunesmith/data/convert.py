"""Convert rows between alpaca, sharegpt, OpenAI chat, text and preference formats.

Supervised rows go through the canonical record (so every format reader's checks apply)
and are written back out in the target's shape. Preference rows (a prompt with a chosen
and a rejected answer) are read by the preference formats (data/formats/*_preference.py).
"""

from __future__ import annotations

from typing import Callable

from tunesmith.data.load import BadRow, LoadReport, rows_to_records
from tunesmith.data.preference import preference_record
from tunesmith.data.records import ORIGIN, RowError
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
    """(prompt messages, chosen message, rejected message) from a row of any preference format."""
    pair = preference_record(row)
    return pair["prompt"], *({"role": "assistant", "content": pair[k]} for k in ("chosen", "rejected"))


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
