"""Tool calls scored against the reference reply, both read by the parser the server and
`tunesmith generate` use (data.tool_calls), so a call counts here exactly when it would be
returned as OpenAI `tool_calls`.

Rows whose reference is a call score: `tool_call_name` (the same functions, in order),
`tool_call_valid_json` (the reply is a call and every argument string parses as a JSON object)
and `tool_call_exact` (same functions with equal arguments, compared as JSON, so key order and
spacing do not matter). Rows whose reference is plain text score `tool_call_none` (the reply
makes no call). `tool_call_accuracy` is the share of all rows fully right: an exact call where
one is expected, no call where none is. Scores without rows to apply to are left out.
"""

from __future__ import annotations

import json

from tunesmith.data.tool_calls import parse_tool_calls
from tunesmith.metrics import register_metric
from tunesmith.metrics.text_utils import check_pairs, mean

KEYS = ("tool_call_accuracy", "tool_call_name", "tool_call_valid_json", "tool_call_exact", "tool_call_none")


@register_metric("tool_calls", "tool calls: right function, valid JSON arguments, exact arguments, "
                 "no call where none is expected")
def tool_calls(predictions: list[str], references: list[str]) -> dict:
    check_pairs("tool_calls", predictions, references)
    rows = [score_row(p, r) for p, r in zip(predictions, references)]
    result = {k: mean(r[k] for r in rows if k in r) for k in KEYS if any(k in r for r in rows)}
    return {**result, "rows": rows}


def score_row(prediction: str, reference: str) -> dict:
    expected, made = parse_tool_calls(reference), parse_tool_calls(prediction)
    if expected is None:
        row = {"tool_call_none": float(made is None)}
        if made:
            row["note"] = f"called {_names(made)} where no call was expected"
        row["tool_call_accuracy"] = row["tool_call_none"]
        return row
    made = made or []
    arguments = [_arguments(c) for c in made]
    same_names = _names(made) == _names(expected)
    valid = bool(made) and all(isinstance(a, dict) for a in arguments)
    row = {"tool_call_name": float(same_names), "tool_call_valid_json": float(valid),
           "tool_call_exact": float(same_names and valid and arguments == [_arguments(c) for c in expected])}
    row["tool_call_accuracy"] = row["tool_call_exact"]
    if not made:
        row["note"] = f"expected a call to {_names(expected)}, got no call"
    elif not same_names:
        row["note"] = f"called {_names(made)}, expected {_names(expected)}"
    return row


def _names(calls: list[dict]) -> list[str]:
    return [c["function"]["name"] for c in calls]


def _arguments(call: dict):
    """The arguments as a JSON object, or None when they are not one."""
    try:
        value = json.loads(call["function"]["arguments"] or "{}")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
