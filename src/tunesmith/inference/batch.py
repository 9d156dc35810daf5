"""Answer every row of a file and write predictions as jsonl."""

from __future__ import annotations

from collections.abc import Callable

from tunesmith.data.examples import Example, to_example
from tunesmith.data.load import load_shaped_like_run
from tunesmith.data.records import prompts_accepted, require_rows
from tunesmith.data.tool_calls import parse_tool_calls
from tunesmith.inference.generate import generate_replies
from tunesmith.inference.load import Loaded, load_for_inference
from tunesmith.utils.io import write_jsonl


def answer_file(loaded: Loaded, input_path: str, max_new_tokens: int = 256, batch_size: int = 8,
                on_progress: Callable[[int], None] | None = None) -> tuple[list[Example], list[str]]:
    """Each row's conversation up to its last reply, answered; rows are read the way the run read
    its training rows (its template steps apply), so a run's raw data layout works as input."""
    with prompts_accepted():  # a user turn with no answer yet is what one generates from
        records = require_rows(load_shaped_like_run(input_path, loaded.config.data), input_path)
    examples = [to_example(r) for r in records]
    replies = generate_replies(loaded, [e.messages for e in examples], max_new_tokens, batch_size,
                               tools=[e.tools for e in examples], on_progress=on_progress)
    return examples, replies


def prediction_rows(examples: list[Example], replies: list[str]) -> list[dict]:
    """One row per example; where the row offered tools and the reply is a call, its OpenAI
    `tool_calls` too."""
    rows = []
    for e, reply in zip(examples, replies):
        row = {"origin": e.origin, "prompt": e.prompt, "reference": e.reference, "prediction": reply}
        calls = parse_tool_calls(reply) if e.tools else None
        if calls:
            row["tool_calls"] = calls
        rows.append(row)
    return rows


def generate_file(run_or_model: str, input_path: str, output_path: str, max_new_tokens: int = 256,
                  batch_size: int = 8, on_progress: Callable[[int], None] | None = None,
                  trust_remote_code: bool = False) -> int:
    loaded = load_for_inference(run_or_model, trust_remote_code=trust_remote_code)
    examples, replies = answer_file(loaded, input_path, max_new_tokens, batch_size, on_progress)
    write_jsonl(output_path, prediction_rows(examples, replies))
    return len(examples)
