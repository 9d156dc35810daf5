"""tunesmith serve for prompt-learning runs (prompt tuning, P-tuning, prefix tuning, P-tuning v2):
each trained in code on the tiny llama, served on one base copy beside a LoRA adapter, answers
greedy requests exactly as the library's own generate does for that run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import openai
import pytest
import torch

from inproc import serving, stream_together
from test_serve import _lora
from tiny import save_tiny_llama, tiny_tokenizer

METHODS = {
    "prompt-tuning": {"num_virtual_tokens": 4},
    "p-tuning": {"num_virtual_tokens": 4, "encoder_hidden_size": 16},
    "prefix-tuning": {"num_virtual_tokens": 4, "encoder_hidden_size": 16},
    "p-tuning-v2": {"num_virtual_tokens": 4},
}
ASK = [{"role": "user", "content": "who are you?"}]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A runs root: the tiny llama, a LoRA adapter on it and one finished run per prompt-learning method."""
    from tunesmith.config import validate_config
    from tunesmith.training.runner import train

    root = tmp_path_factory.mktemp("prompt-runs")
    base = save_tiny_llama(root / "base")
    _lora(base, root / "lora", 1)
    data = root / "chat.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"what is {i} plus {i}?"},
                                                     {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]})
                            + "\n" for i in range(8)))
    for method, options in METHODS.items():
        result = train(validate_config({
            "model": {"name_or_path": str(base)},
            "data": {"train": [str(data)], "template": "chatml", "eval_ratio": 0},
            "method": {"name": method, **options},
            "train": {"max_steps": 3, "batch_size": 4, "learning_rate": 0.3, "logging_steps": 1, "save_steps": 100,
                      "precision": "fp32", "threads": 1},
            "eval": {"before_training": False},
            "output": {"dir": str(root / method)},
        }))
        assert result.status == "succeeded"
    return root


@pytest.fixture(scope="module")
def server(root):
    from tunesmith.server.app import create_app
    from tunesmith.serving.catalog import Catalog
    from tunesmith.serving.engine import LocalEngine
    from tunesmith.serving.service import Service

    service = Service(Catalog(root, [str(root / m) for m in ("lora", *METHODS)]), LocalEngine(max_adapters=8))
    try:
        with serving(create_app(service)) as url:
            yield url, service
    finally:
        service.engine.close()


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server[0]}/v1", api_key="unused", max_retries=0)


def _library_reply(run: Path, messages: list[dict], tokens: int) -> str:
    """What `tunesmith generate` answers for the run (greedy): the library's own generate."""
    from tunesmith.inference.generate import generate_replies
    from tunesmith.inference.load import load_for_inference

    return generate_replies(load_for_inference(str(run)), [messages], max_new_tokens=tokens)[0]


def _prompt_tokens(messages: list[dict]) -> int:
    tok = tiny_tokenizer()
    return len(tok(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True),
                   add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize("method", list(METHODS))
def test_served_reply_equals_the_librarys_generate(root, server, client, method):
    url, service = server
    want = _library_reply(root / method, ASK, 10)
    whole = client.chat.completions.create(model=method, messages=ASK, max_tokens=10, temperature=0)
    choice = whole.choices[0]
    assert choice.message.content.strip() == want  # the library strips the reply; the API does not
    assert whole.usage.prompt_tokens == _prompt_tokens(ASK)  # the virtual tokens are not the client's
    assert choice.finish_reason == ("length" if whole.usage.completion_tokens == 10 else "stop")
    if choice.finish_reason == "stop":
        assert whole.usage.completion_tokens < 10
    chunks = list(client.chat.completions.create(model=method, messages=ASK, max_tokens=10, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == choice.message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == choice.finish_reason
    assert chunks[-1].usage == whole.usage
    model = client.models.retrieve(method)
    assert model.model_extra["parent"] == str(root / "base")  # one base copy: the run is an adapter of it
    assert len(service.engine._slots) == 1


def test_completions_equal_pefts_generate(root, client):
    from tunesmith.inference.load import load_for_inference

    for method in ("prompt-tuning", "prefix-tuning"):
        loaded = load_for_inference(str(root / method))
        ids = loaded.tokenizer("the quick brown", return_tensors="pt")
        with torch.no_grad():
            out = loaded.model.generate(**ids, max_new_tokens=6, do_sample=False, eos_token_id=None,
                                        pad_token_id=loaded.tokenizer.pad_token_id)
        want = loaded.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        got = client.completions.create(model=method, prompt="the quick brown", max_tokens=6, temperature=0)
        assert got.choices[0].text == want, method
        assert got.usage.prompt_tokens == ids["input_ids"].shape[1] and got.usage.completion_tokens == 6
        assert got.choices[0].finish_reason == "length"


def test_prompt_runs_and_a_lora_adapter_batch_together_and_equal_alone(server, client):
    url, service = server
    models = ["lora", *METHODS] * 2
    requests = [(m, [{"role": "user", "content": f"what is {i} plus {i}?"}]) for i, m in enumerate(models)]
    alone = [client.chat.completions.create(model=m, messages=msgs, max_tokens=8, temperature=0)
             .choices[0].message.content for m, msgs in requests]
    assert len(set(alone[:5])) > 1  # the runs answer differently: the prefixes are really applied
    slot = next(iter(service.engine._slots.values()))
    calls_before = slot.forward.calls

    assert stream_together(url, requests) == alone
    assert slot.forward.calls - calls_before < len(requests) * 8 * 0.75  # rows of different runs shared passes


def test_prompt_runs_are_evicted_lru_with_the_adapters(root):
    from tunesmith.serving.catalog import Catalog
    from tunesmith.serving.engine import LocalEngine

    catalog, engine = Catalog(root, [str(root / "lora")]), LocalEngine(max_adapters=2)
    try:
        for name in ("lora", "prompt-tuning", "prefix-tuning", "lora"):
            engine.load(catalog.resolve(name))
        resident = sorted(n for names in engine.resident().values() for n in names)
        assert resident == ["lora", "prefix-tuning"]
        slot = next(iter(engine._slots.values()))
        assert list(slot.prefixes) == [catalog.resolve("prefix-tuning").key]
    finally:
        engine.close()


def test_the_context_counts_the_virtual_tokens(root, client):
    prompt = [{"role": "user", "content": "x " * 100}]
    length = _prompt_tokens(prompt)
    room = 256 - length  # the tiny llama's context
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="prompt-tuning", messages=prompt, max_tokens=room - 2)
    assert err.value.body["code"] == "context_length_exceeded"
    client.chat.completions.create(model="prompt-tuning", messages=prompt, max_tokens=room - 4)


def test_a_prefix_made_while_lora_adapters_are_loaded_is_the_bare_bases(root):
    """Prompt-tuning prefixes run the base model: a LoRA adapter loaded before must not leak in."""
    from tunesmith.serving.catalog import Catalog
    from tunesmith.serving.engine import LocalEngine
    from tunesmith.serving.openai import ChatRequest
    from tunesmith.serving.service import Service

    service = Service(Catalog(root, [str(root / "lora")]), LocalEngine())
    try:
        service.engine.load(service.catalog.resolve("lora"))  # the base is a PeftModel from here on
        for method in ("prompt-tuning", "p-tuning"):
            request = ChatRequest(model=method, messages=ASK, max_tokens=10, temperature=0)
            answer = asyncio.run(service.chat(service.begin("chat"), request))
            assert answer["choices"][0]["message"]["content"].strip() == _library_reply(root / method, ASK, 10)
    finally:
        service.engine.close()
