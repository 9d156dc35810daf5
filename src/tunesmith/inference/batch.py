"""Answer every row of a file and write predictions as jsonl."""

from __future__ import annotations

from tunesmith.data.load import load_records
from tunesmith.data.records import origin, require_rows
from tunesmith.inference.generate import generate_replies
from tunesmith.inference.load import load_for_inference
from tunesmith.utils.io import write_jsonl


def prompt_and_reference(record: dict) -> tuple[list[dict], str | None]:
    """The conversation before the last assistant turn, and that turn as the reference."""
    messages = record["messages"]
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        return messages, None
    return messages[:last], messages[last]["content"]


def generate_file(run_or_model: str, input_path: str, output_path: str,
                  max_new_tokens: int = 256, batch_size: int = 8) -> int:
    loaded = load_for_inference(run_or_model)
    records, _ = load_records([input_path], "auto", loaded.config.data.on_bad_row)
    pairs = [prompt_and_reference(r) for r in require_rows(records, input_path)]
    replies = generate_replies(loaded, [p for p, _ in pairs], max_new_tokens, batch_size, show_progress=True)
    rows = [
        {"origin": origin(r), "prompt": p[-1]["content"], "reference": ref, "prediction": reply}
        for r, (p, ref), reply in zip(records, pairs, replies)
    ]
    write_jsonl(output_path, rows)
    return len(rows)
