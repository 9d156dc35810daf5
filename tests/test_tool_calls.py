"""Tool calls at inference: a row's `tools` are rendered into the prompt exactly as training
rendered them, a reply that is a call parses back into OpenAI `tool_calls`, and the tool-call
metric scores it (its hand-computed values are in test_metrics_contract.py)."""

from __future__ import annotations

import json

import pytest

from tiny import save_tiny_llama, tiny_tokenizer
from tunesmith.data.templates import NAMED_TEMPLATES, TokenizerTemplate, render_prompt, render_segments
from tunesmith.data.tool_calls import call_prefix, parse_tool_calls

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
CALL = [{"type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}]
ROW = {"messages": [{"role": "user", "content": "weather in Paris?"},
                    {"role": "assistant", "content": None, "tool_calls": CALL}], "tools": TOOLS}
SYSTEM = "You are helpful."

# a tokenizer template that renders tools the way tool-aware Jinja templates do (into the system turn)
WITH_TOOLS = (
    "{% if tools %}{{ '<|im_start|>system\nTools: ' + (tools | tojson) + '<|im_end|>\n' }}{% endif %}"
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _prompt_part(segments) -> str:
    """The training text before the first trained segment: what the model saw before answering."""
    head = []
    for text, trainable in segments:
        if trainable:
            break
        head.append(text)
    return "".join(head)


@pytest.mark.parametrize("name", ["chatml", "llama3", "alpaca", "tokenizer"])
def test_inference_prompt_is_the_training_text_up_to_the_answer(name):
    tok = tiny_tokenizer(WITH_TOOLS)
    template = TokenizerTemplate(tok) if name == "tokenizer" else NAMED_TEMPLATES[name]
    messages = [{"role": "user", "content": "weather in Paris?"},
                {"role": "assistant", "content": json.dumps(CALL)}]
    tools = json.dumps(TOOLS)
    trained = render_segments(template, tok, messages, SYSTEM, tools)
    prompt = render_prompt(template, tok, messages[:1], SYSTEM, TOOLS)  # tools as a list, as a request sends them
    assert prompt == _prompt_part(trained)
    assert "get_weather" in prompt and SYSTEM in prompt
    assert "get_weather" not in render_prompt(template, tok, messages[:1], SYSTEM)  # no tools: none rendered


def test_openai_rows_train_on_the_calls_as_json():
    from tunesmith.data.formats.openai import to_record

    record = to_record(ROW)
    assert json.loads(record["messages"][-1]["content"]) == CALL
    assert json.loads(record["tools"]) == TOOLS


def test_replies_parse_into_openai_tool_calls():
    calls = parse_tool_calls(json.dumps(CALL))
    assert [c["function"] for c in calls] == [{"name": "get_weather", "arguments": '{"city": "Paris"}'}]
    assert calls[0]["type"] == "function" and calls[0]["id"].startswith("call_")
    bare = parse_tool_calls('```json\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n```')
    assert json.loads(bare[0]["function"]["arguments"]) == {"city": "Rome"}  # objects become JSON strings
    kept = parse_tool_calls(json.dumps([{"id": "call_7", **CALL[0]}, {"name": "b"}]))
    assert [c["id"] for c in kept][0] == "call_7" and kept[1]["function"] == {"name": "b", "arguments": "{}"}
    for text in ("It is sunny.", '{"city": "Paris"}', "[1, 2]", "[]", '[{"type": "function"'):
        assert parse_tool_calls(text) is None, text


def test_a_forced_opening_plus_its_continuation_parses():
    rest = '"{\\"city\\": \\"Oslo\\"}"}}]'
    assert parse_tool_calls(call_prefix("get_weather") + rest)[0]["function"] == {
        "name": "get_weather", "arguments": '{"city": "Oslo"}'}
    assert parse_tool_calls(call_prefix() + 'get_weather", "arguments": "{}"}}]')[0]["function"]["name"] == \
        "get_weather"


@pytest.fixture(scope="module")
def tool_run(tmp_path_factory):
    """A tiny llama fully tuned on a tool-call row (with a system prompt and tools)."""
    from tunesmith.config import validate_config
    from tunesmith.training.runner import train

    root = tmp_path_factory.mktemp("toolrun")
    base = save_tiny_llama(root / "base")
    data = root / "calls.jsonl"
    data.write_text((json.dumps(ROW) + "\n") * 8)
    config = validate_config({
        "model": {"name_or_path": str(base)},
        "data": {"train": [str(data)], "template": "chatml", "eval_ratio": 0, "system": SYSTEM},
        "method": {"name": "full"}, "eval": {"metrics": ["tool_calls"]},
        "train": {"max_steps": 80, "batch_size": 2, "learning_rate": 1e-2, "scheduler": "constant",
                  "logging_steps": 20, "save_steps": 200, "precision": "fp32", "threads": 1},
        "output": {"dir": str(root / "run")},
    })
    train(config)
    return root / "run", data, config


def test_generate_renders_the_rows_tools_as_training_did_and_returns_tool_calls(tool_run, tmp_path, monkeypatch):
    from tunesmith.data.formats.openai import to_record
    from tunesmith.inference import generate
    from tunesmith.inference.predict import predict_file
    from tunesmith.tasks.sft import build_features

    run, data, config = tool_run
    prompts = []
    real = generate._generate
    monkeypatch.setattr(generate, "_generate", lambda loaded, p, *a, **k: prompts.extend(p) or real(loaded, p, *a, **k))
    result = predict_file(str(run), str(data), str(tmp_path / "out.jsonl"), batch_size=8, max_new_tokens=100)

    tok = tiny_tokenizer()
    (feature,), _ = build_features([to_record(ROW)], tok, config)
    first_trained = next(i for i, label in enumerate(feature["labels"]) if label != -100)
    assert prompts[0] == tok.decode(feature["input_ids"][:first_trained])  # training's text up to the answer
    assert "get_weather" in prompts[0] and prompts[0].endswith("<|im_start|>assistant\n")

    row = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    assert row["tool_calls"][0]["function"]["name"] == "get_weather"
    assert json.loads(row["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert result.metrics["tool_call_exact"] == 1.0 and result.metrics["tool_call_accuracy"] == 1.0
