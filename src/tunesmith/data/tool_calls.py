"""Tool calls in a model's reply, as tunesmith trains them.

Training target: an assistant turn that calls tools (an OpenAI row's `tool_calls`, a ShareGPT
`function_call` turn) is learned as its calls written as JSON text, e.g.
`[{"type": "function", "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}}]`
(data/formats/openai.py). `parse_tool_calls` reads such a reply back into OpenAI's response
shape; `call_prefix` is the start of that text, used to force a call (serving's tool_choice).
Training, the CLI, evaluation, the tool-call metric and the server all use these, so they agree
on what counts as a call (it lives in `data`, below metrics and inference, for that reason).
"""

from __future__ import annotations

import json
import re
import uuid

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.DOTALL)


def parse_tool_calls(text: str) -> list[dict] | None:
    """The reply's calls as OpenAI `tool_calls` ({id, type, function: {name, arguments}}, arguments
    a JSON string), or None when the reply is not a call (plain text, or JSON of another shape).
    Accepts a list of calls or one call, each {"function": {name, arguments}} or bare {name,
    arguments}; arguments given as an object are written as JSON text. A call without an id
    gets a fresh one."""
    fenced = _FENCE.match(text)
    try:
        data = json.loads(fenced.group(1) if fenced else text)
    except ValueError:
        return None
    calls = data if isinstance(data, list) else [data]
    out = []
    for call in calls:
        fn = call.get("function", call) if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            return None
        args = fn.get("arguments", {})
        out.append({"id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                    "function": {"name": fn["name"],
                                 "arguments": args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)}})
    return out or None


def call_prefix(name: str | None = None) -> str:
    """The opening of a trained call, up to the arguments (`name` given) or the function's name
    (None: any function); a reply that starts with it can only be a call. It is the training
    target's own text (json.dumps of an OpenAI call without an id, the key order OpenAI writes
    after the id), so a forced reply continues the way the run learned to write calls."""
    # Cut where the training text's own pre-tokens end (before a space or a letter), so the
    # opening tokenizes as it did inside the trained reply and the model continues from there.
    if name is None:
        return '[{"type": "function", "function": {"name": "'
    return '[{"type": "function", "function": {"name": ' + json.dumps(name, ensure_ascii=False) + ', "arguments":'

