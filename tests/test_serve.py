"""tunesmith serve, driven by the official `openai` client over real HTTP (uvicorn on loopback):
models, chat (streamed and not), completions, embeddings, tool calls, predict, bad input,
adapters on one base batched together, metrics and security."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest
import torch

from finished_runs import finished_runs  # noqa: F401  (fixture)
from inproc import serving, stream_together
from tiny import save_tiny_llama, tiny_tokenizer
from tiny_tasks import save_tiny_bert, sentiment_rows, write_tsv

HELLO = [{"role": "user", "content": "hello world, what is your name"}]


def _lora(base: Path, out: Path, seed: int) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    for name, p in model.named_parameters():
        if "lora_B" in name:  # big enough that the adapters clearly differ
            p.data.normal_(0, 0.5)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A runs root: a tiny llama base, three LoRA adapters on it, a tiny BERT encoder."""
    root = tmp_path_factory.mktemp("runs")
    base = save_tiny_llama(root / "base")
    for seed in (1, 2, 3):
        _lora(base, root / f"lora{seed}", seed)
    save_tiny_bert(root / "bert")
    return root


@contextmanager
def running(root: Path, models: list[str], keys=None, rate=None, max_body: int = 1_000_000, registry=None,
            **engine):
    """The app on 127.0.0.1, a free port, in a thread; stopped (and its engine closed) on exit."""

    from tunesmith.server.app import create_app
    from tunesmith.serving.catalog import Catalog
    from tunesmith.serving.engine import LocalEngine
    from tunesmith.serving.service import Service

    service = Service(Catalog(root, [str(root / m) for m in models], registry), LocalEngine(**engine))
    try:
        with serving(create_app(service, keys, rate, max_body)) as url:
            yield url, service
    finally:
        service.engine.close()


@pytest.fixture(scope="module")
def server(root):
    with running(root, ["lora1", "lora2", "lora3", "base", "bert"], max_adapters=2) as served:
        yield served


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server[0]}/v1", api_key="unused", max_retries=0)


def _chat_prompt_tokens(messages, tools=None) -> int:
    """What the run's template (the tokenizer's chatml) makes of the conversation, counted."""
    tok = tiny_tokenizer()
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return len(tok(text, add_special_tokens=False)["input_ids"])


def test_models_list_adapters_with_their_base(client, root):
    models = {m.id: m for m in client.models.list().data}
    assert {"lora1", "lora2", "lora3", "base", "bert"} <= set(models)  # plus runs under the root
    assert models["lora2"].model_extra["parent"] == str(root / "base")
    assert models["lora2"].model_extra["root"] == str(root / "base")
    assert models["base"].model_extra["parent"] is None
    assert client.models.retrieve("lora3").id == "lora3"


def test_chat_streamed_and_not_agree_with_usage_and_finish_reason(client):
    whole = client.chat.completions.create(model="lora1", messages=HELLO, max_tokens=6, temperature=0)
    choice = whole.choices[0]
    assert whole.model == "lora1" and whole.object == "chat.completion"
    assert whole.usage.prompt_tokens == _chat_prompt_tokens(HELLO)
    assert 1 <= whole.usage.completion_tokens <= 6
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens
    assert choice.finish_reason == ("length" if whole.usage.completion_tokens == 6 else "stop")
    chunks = list(client.chat.completions.create(model="lora1", messages=HELLO, max_tokens=6, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == choice.finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    other = client.chat.completions.create(model="lora2", messages=HELLO, max_tokens=6, temperature=0)
    assert other.choices[0].message.content != choice.message.content  # the request's model picks the adapter


def test_chat_sampling_n_seed_and_stop(client):
    kw = dict(model="lora3", messages=HELLO, max_tokens=8, temperature=1.5, seed=7, n=3)
    first, again = client.chat.completions.create(**kw), client.chat.completions.create(**kw)
    assert [c.message.content for c in first.choices] == [c.message.content for c in again.choices]
    assert [c.index for c in first.choices] == [0, 1, 2]
    assert first.usage.completion_tokens == sum(_tokens(c.message.content, c.finish_reason) for c in first.choices)
    greedy = client.chat.completions.create(model="lora2", messages=HELLO, max_tokens=8, temperature=0)
    text = greedy.choices[0].message.content
    stop = text[3:5]
    cut = client.chat.completions.create(model="lora2", messages=HELLO, max_tokens=8, temperature=0, stop=[stop])
    assert cut.choices[0].message.content == text[:text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def _tokens(text, reason) -> int:
    """Lower bound check helper: a finished-by-length reply used all of max_tokens."""
    return 8 if reason == "length" else len(tiny_tokenizer()(text, add_special_tokens=False)["input_ids"]) + 1


def test_completions_streamed_and_not(client):
    whole = client.completions.create(model="base", prompt="the quick brown", max_tokens=5, temperature=0)
    assert whole.usage.prompt_tokens == len(tiny_tokenizer()("the quick brown")["input_ids"])
    assert whole.usage.completion_tokens == 5 and whole.choices[0].finish_reason == "length"
    parts = list(client.completions.create(model="base", prompt="the quick brown", max_tokens=5, temperature=0,
                                           stream=True))
    assert "".join(p.choices[0].text for p in parts) == whole.choices[0].text


def test_embeddings_are_mean_pooled_last_hidden_states(client, root):
    from transformers import AutoModel, AutoTokenizer

    texts = ["hello world", "the lazy dog jumps over"]
    answer = client.embeddings.create(model="bert", input=texts)  # the client asks for base64
    tok, model = AutoTokenizer.from_pretrained(root / "bert"), AutoModel.from_pretrained(root / "bert")
    for i, text in enumerate(texts):
        with torch.no_grad():
            expected = model(**tok(text, return_tensors="pt")).last_hidden_state[0].mean(0)
        torch.testing.assert_close(torch.tensor(answer.data[i].embedding), expected, atol=1e-5, rtol=1e-4)
    assert answer.usage.prompt_tokens == sum(len(tok(t)["input_ids"]) for t in texts)
    floats = client.embeddings.create(model="bert", input="hello world", encoding_format="float")
    torch.testing.assert_close(torch.tensor(floats.data[0].embedding), torch.tensor(answer.data[0].embedding))


@pytest.fixture(scope="module")
def tool_run(root, tmp_path_factory):
    """A tiny llama fully tuned on one conversation whose answer is a call to f (of tools f and g)."""
    from tunesmith.config import validate_config
    from tunesmith.training.runner import train

    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
             {"type": "function", "function": {"name": "g"}}]
    call = [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]
    row = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None,
                                                            "tool_calls": call}], "tools": tools}
    data = tmp_path_factory.mktemp("tools") / "tools.jsonl"
    data.write_text((json.dumps(row) + "\n") * 8)
    config = validate_config({
        "model": {"name_or_path": str(root / "base")},
        "data": {"train": [str(data)], "template": "chatml", "eval_ratio": 0}, "method": {"name": "full"},
        "train": {"max_steps": 80, "batch_size": 8, "learning_rate": 2e-2, "logging_steps": 10, "save_steps": 100,
                  "precision": "fp32", "threads": 1},
        "output": {"dir": str(root / "tools")},
    })
    train(config)
    return tools


def test_a_run_trained_on_tool_calls_answers_with_tool_calls(client, tool_run):
    ask = [{"role": "user", "content": "hi"}]
    answer = client.chat.completions.create(model="tools", messages=ask, tools=tool_run, max_tokens=60, temperature=0)
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls[0].function.name == "f"
    assert choice.message.tool_calls[0].function.arguments == "{}"
    streamed = list(client.chat.completions.create(model="tools", messages=ask, tools=tool_run, max_tokens=60,
                                                   temperature=0, stream=True))
    calls = [c for s in streamed for c in (s.choices[0].delta.tool_calls or [])]
    assert calls[0].function.name == "f" and streamed[-1].choices[0].finish_reason == "tool_calls"
    plain = client.chat.completions.create(model="tools", messages=ask, tools=tool_run, tool_choice="none",
                                           max_tokens=40, temperature=0)
    assert plain.choices[0].message.tool_calls is None  # tool_choice none: the reply stays text


def test_tool_choice_required_and_named_force_a_call(client, tool_run):
    ask = [{"role": "user", "content": "hi"}]
    required = client.chat.completions.create(model="tools", messages=ask, tools=tool_run, tool_choice="required",
                                              max_tokens=40, temperature=0)
    assert required.choices[0].finish_reason == "tool_calls"
    assert required.choices[0].message.tool_calls[0].function.name in ("f", "g")
    named = {"type": "function", "function": {"name": "g"}}  # the run only ever called f: forced to g
    forced = client.chat.completions.create(model="tools", messages=ask, tools=tool_run, tool_choice=named,
                                            parallel_tool_calls=False, max_tokens=40, temperature=0)
    calls = forced.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["g"] and forced.choices[0].finish_reason == "tool_calls"
    assert json.loads(calls[0].function.arguments) == {}
    streamed = list(client.chat.completions.create(model="tools", messages=ask, tools=tool_run, tool_choice=named,
                                                   max_tokens=40, temperature=0, stream=True))
    deltas = [c for s in streamed for c in (s.choices[0].delta.tool_calls or [])]
    assert [d.function.name for d in deltas] == ["g"]
    assert deltas[0].function.arguments == calls[0].function.arguments


def test_tool_choice_that_cannot_be_honoured_is_a_400(client, tool_run):
    ask = [{"role": "user", "content": "hi"}]
    for tools, choice, param in [(None, "required", "tool_choice"), (tool_run, "sometimes", "tool_choice"),
                                 (tool_run, {"type": "function", "function": {"name": "nope"}}, "tool_choice")]:
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model="tools", messages=ask, tools=tools or openai.NOT_GIVEN,
                                           tool_choice=choice, max_tokens=4)
        assert err.value.body["param"] == param, err.value.body


def test_parallel_tool_calls_false_keeps_the_first_call():
    from tunesmith.serving.openai import ChatRequest
    from tunesmith.serving.service import _calls

    reply = json.dumps([{"type": "function", "function": {"name": n, "arguments": "{}"}} for n in ("a", "b")])
    body = {"model": "m", "messages": HELLO, "tools": [{"type": "function", "function": {"name": "a"}}]}
    assert [c["function"]["name"] for c in _calls(reply, ChatRequest(**body))] == ["a", "b"]
    assert [c["function"]["name"] for c in _calls(reply, ChatRequest(**body, parallel_tool_calls=False))] == ["a"]


def _post(url: str, body, path: str = "/v1/chat/completions", **kw) -> httpx.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    return httpx.post(url + path, content=content, headers={"content-type": "application/json", **kw}, timeout=30)


@pytest.mark.parametrize("body, status, param, code", [
    ("{not json", 400, None, "invalid_json"),
    ({"model": "lora1"}, 400, "messages", "missing_required_parameter"),
    ({"model": "lora1", "messages": "hi"}, 400, "messages", "invalid_value"),
    ({"model": "lora1", "messages": [{"role": "wizard", "content": "x"}]}, 400, "messages.0.role", "invalid_value"),
    ({"model": "lora1", "messages": HELLO, "n": 0}, 400, "n", "invalid_value"),
    ({"model": "lora1", "messages": HELLO, "n": 1000}, 400, "n", "invalid_value"),
    ({"model": "lora1", "messages": HELLO, "max_tokens": 0}, 400, "max_tokens", "invalid_value"),
    ({"model": "lora1", "messages": HELLO, "max_tokens": 1000}, 400, "max_tokens", "context_length_exceeded"),
    ({"model": "lora1", "messages": [{"role": "user", "content": "hello " * 300}]}, 400, "messages",
     "context_length_exceeded"),
    ({"model": "lora1", "messages": HELLO, "temperature": "hot"}, 400, "temperature", "invalid_value"),
    ({"model": "no-such-model", "messages": HELLO}, 404, "model", "model_not_found"),
    ({"model": "../base", "messages": HELLO}, 404, "model", "model_not_found"),
    ({"model": "bert", "messages": HELLO}, 400, "model", "invalid_value"),
])
def test_bad_input_is_a_4xx_openai_error_and_the_server_keeps_serving(server, body, status, param, code):
    url, _ = server
    answer = _post(url, body)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert (error["param"], error["code"]) == (param, code)
    ok = _post(url, {"model": "lora1", "messages": HELLO, "max_tokens": 2})
    assert ok.status_code == 200


def test_half_written_run_and_adapter_without_its_base(server, root):
    url, _ = server
    half = root / "half"
    half.mkdir()
    (half / "config.yaml").write_text(f"model:\n  name_or_path: {root / 'base'}\n")
    (half / "STATUS").write_text("running\n")
    answer = _post(url, {"model": "half", "messages": HELLO})
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "model_not_ready"
    orphan = root / "orphan"
    orphan.mkdir()
    config = json.loads((root / "lora1" / "adapter_config.json").read_text())
    (orphan / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(root / "gone")}))
    (orphan / "adapter_model.safetensors").write_bytes((root / "lora1" / "adapter_model.safetensors").read_bytes())
    added = _post(url, {"name": "orphan", "path": "orphan"}, "/v1/adapters")
    assert 400 <= added.status_code < 500 and "gone" in added.json()["error"]["message"]
    assert _post(url, {"model": "orphan", "messages": HELLO}).status_code == 404  # not left half-added
    assert _post(url, {"name": "x", "path": "../.."}, "/v1/adapters").status_code == 404
    prompt = root / "prompt-run"  # a prompt-learning run whose adapter file is empty
    (prompt / "adapter").mkdir(parents=True)
    (prompt / "config.yaml").write_text(f"model:\n  name_or_path: {root / 'base'}\nmethod:\n  name: prompt-tuning\n")
    (prompt / "STATUS").write_text("succeeded\n")
    (prompt / "adapter" / "adapter_config.json").write_text(json.dumps({"peft_type": "PROMPT_TUNING"}))
    (prompt / "adapter" / "adapter_model.safetensors").write_bytes(b"")
    refused = _post(url, {"model": "prompt-run", "messages": HELLO})
    assert refused.status_code == 400 and "virtual tokens" in refused.json()["error"]["message"]
    pickled = root / "pickled"
    pickled.mkdir()
    shutil.copy(root / "base" / "config.json", pickled / "config.json")
    torch.save({}, pickled / "pytorch_model.bin")
    refused = _post(url, {"name": "pickled", "path": "pickled"}, "/v1/adapters")
    assert refused.status_code == 400 and "safetensors only" in refused.json()["error"]["message"]
    assert _post(url, {"model": "lora1", "messages": HELLO, "max_tokens": 2}).status_code == 200


def test_adapters_load_and_unload_at_run_time(server, client):
    url, service = server
    want = client.chat.completions.create(model="lora3", messages=HELLO, max_tokens=6, temperature=0)
    added = _post(url, {"name": "hot", "path": "lora3"}, "/v1/adapters")
    assert added.status_code == 200 and added.json()["parent"] == service.catalog.named["lora1"].base
    got = client.chat.completions.create(model="hot", messages=HELLO, max_tokens=6, temperature=0)
    assert got.choices[0].message.content == want.choices[0].message.content and got.model == "hot"
    assert httpx.delete(f"{url}/v1/adapters/hot").status_code == 200
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="hot", messages=HELLO, max_tokens=2)
    for name in ("lora1", "lora2", "lora3", "lora1"):  # LRU: at most --max-adapters stay in memory
        client.chat.completions.create(model=name, messages=HELLO, max_tokens=1)
    resident = [n for names in service.engine.resident().values() for n in names]
    assert sorted(resident) == ["lora1", "lora3"]
    scraped = _scrape(url)
    assert sorted(k for k in scraped if k.startswith("tunesmith_adapter_resident")) == [
        f"tunesmith_adapter_resident[('base', '{(service.engine._slot_key(service.catalog.named[n]))}'), "
        f"('model', '{n}')]" for n in ("lora1", "lora3")]


def test_eight_concurrent_streams_over_three_adapters_equal_alone(server, client):
    url, service = server
    requests = [(f"lora{1 + i % 3}", [{"role": "user", "content": f"what is {i} plus {i}?"}]) for i in range(8)]
    alone = [client.chat.completions.create(model=m, messages=msgs, max_tokens=8, temperature=0)
             .choices[0].message.content for m, msgs in requests]
    slot = next(iter(service.engine._slots.values()))
    calls_before = slot.forward.calls

    with_others = stream_together(url, requests)
    assert with_others == alone
    sequential_calls = 8 * 8  # alone, each request needs about one forward pass per token
    assert slot.forward.calls - calls_before < sequential_calls * 0.75  # rows of different adapters shared passes


def _scrape(url: str, headers=None) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", headers=headers).text
    return {f"{s.name}{sorted(s.labels.items())}": s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_every_request(server, client):
    url, _ = server
    before = _scrape(url)
    n, tokens = 3, 0
    for _ in range(n):
        tokens += client.chat.completions.create(model="lora2", messages=HELLO, max_tokens=3,
                                                 temperature=0).usage.completion_tokens
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="../../etc", messages=HELLO)
    after = _scrape(url)
    tags = [("model", "lora2"), ("version", "")]

    def delta(name, extra=()):
        key = f"{name}{sorted(tags + list(extra))}"
        return after.get(key, 0) - before.get(key, 0)

    assert delta("tunesmith_requests_total", [("endpoint", "chat"), ("status", "200")]) == n
    assert delta("tunesmith_request_latency_seconds_count", [("endpoint", "chat")]) == n
    assert delta("tunesmith_time_to_first_token_seconds_count") == n
    assert delta("tunesmith_completion_tokens_total") == tokens
    assert delta("tunesmith_prompt_tokens_total") == n * _chat_prompt_tokens(HELLO)
    assert delta("tunesmith_inter_token_latency_seconds_count") == tokens - n
    unknown = [("endpoint", "chat"), ("model", "unknown"), ("status", "404"), ("version", "")]
    assert after[f"tunesmith_requests_total{unknown}"] - before.get(f"tunesmith_requests_total{unknown}", 0) == 1
    assert "tunesmith_queue_depth[]" in after and "tunesmith_resident_adapters[]" in after


def test_security_keys_rate_limit_body_size_and_paths(root):
    from tunesmith.errors import ConfigError
    from tunesmith.serving.security import ApiKeys, RateLimiter, check_bind, hash_key

    keys_file = root / "keys.txt"
    keys_file.write_text(f"# clients\nsha256:{hash_key('second')}\n")
    keys = ApiKeys.load(["first"], keys_file)
    assert "first" not in str(keys.hashes) and "second" not in keys_file.read_text()
    with pytest.raises(ConfigError, match="--host 0.0.0.0"):
        check_bind("0.0.0.0", ApiKeys())
    check_bind("0.0.0.0", keys)
    check_bind("127.0.0.1", ApiKeys())
    from tunesmith.cli.main import run as cli

    with pytest.raises(SystemExit) as refused:
        cli(["serve", "--host", "0.0.0.0", "--runs-root", str(root)])
    assert refused.value.code == 2
    with running(root, ["base"], keys=keys, rate=RateLimiter(per_minute=60, burst=4), max_body=4000) as (url, _):
        no_key = openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as err:
            no_key.models.list()
        assert err.value.body["code"] == "invalid_api_key"
        assert httpx.get(f"{url}/v1/models").status_code == 401
        assert httpx.get(f"{url}/health").status_code == 200
        good = openai.OpenAI(base_url=f"{url}/v1", api_key="second", max_retries=0)
        with pytest.raises(openai.NotFoundError):
            good.chat.completions.create(model="../base", messages=HELLO)
        big = _post(url, {"model": "base", "messages": [{"role": "user", "content": "x" * 5000}]},
                    authorization="Bearer first")
        assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"
        assert "base" in {m.id for m in good.models.list().data}
        with pytest.raises(openai.RateLimitError) as limited:  # burst of 4 used: 2 above, 1 here, 1 below
            for _ in range(3):
                good.models.list()
        assert int(limited.value.response.headers["retry-after"]) >= 1
        assert openai.OpenAI(base_url=f"{url}/v1", api_key="first", max_retries=0).models.list().data


def test_predict_answers_with_the_runs_label_map(root, tiny_config, tmp_path):
    from tunesmith.inference.predict import predict_file
    from tunesmith.training.runner import train

    train_file = write_tsv(tmp_path / "train.tsv", ["sentence", "label"], sentiment_rows(16))
    run = train(tiny_config(model={"name_or_path": str(root / "bert")}, method={"name": "full"},
                            data={"train": [str(train_file)], "eval_ratio": 0, "cutoff_len": 32},
                            task={"name": "classification", "text_column": "sentence"},
                            train={"max_steps": 2, "batch_size": 8, "save_steps": 100},
                            output={"dir": str(root / "sentiment")})).run_dir
    rows = [{"sentence": "quick brown fox"}, {"sentence": "lazy dog who"}]
    new = write_tsv(tmp_path / "new.tsv", ["sentence"], [(r["sentence"],) for r in rows])
    offline = [json.loads(line) for line in
               predict_file(str(run), str(new), str(tmp_path / "p.jsonl")).output.read_text().splitlines()]
    with running(root, []) as (url, _):
        answer = _post(url, {"model": "sentiment", "input": rows}, "/v1/predict").json()
    assert answer["labels"] == ["negative", "positive"] and answer["task"] == "classification"
    assert [r["label"] for r in answer["data"]] == [r["label"] for r in offline]
    for got, want in zip(answer["data"], offline):
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)


def test_new_version_of_a_name_keeps_requests_in_flight(server, client):
    url, service = server
    long = dict(messages=HELLO, max_tokens=40, temperature=0)
    want_old = client.chat.completions.create(model="lora1", **long).choices[0].message.content
    want_new = client.chat.completions.create(model="lora2", **long).choices[0].message.content
    assert _post(url, {"name": "live", "path": "lora1"}, "/v1/adapters").status_code == 200
    stream = client.chat.completions.create(model="live", stream=True, **long)
    parts = [next(stream).choices[0].delta.content, next(stream).choices[0].delta.content]
    assert _post(url, {"name": "live", "path": "lora2"}, "/v1/adapters").status_code == 200  # replaced mid-stream
    parts += [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(parts) == want_old
    assert client.chat.completions.create(model="live", **long).choices[0].message.content == want_new
    httpx.delete(f"{url}/v1/adapters/live")


def test_a_client_that_disconnects_cancels_its_generation(server):
    url, service = server
    slot = next(iter(service.engine._slots.values()))
    before = slot.forward.calls
    body = {"model": "lora2", "messages": HELLO, "max_tokens": 200, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=30) as answer:
        next(answer.iter_lines())
    deadline = time.monotonic() + 10
    while slot.live and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slot.live == 0 and slot.forward.calls - before < 150  # stopped well before 200 tokens


def test_overload_answers_429_with_retry_after(root):
    async def burst(url):
        async with httpx.AsyncClient(timeout=60) as http:
            body = {"model": "base", "messages": HELLO, "max_tokens": 20, "temperature": 0}
            return await asyncio.gather(*(http.post(f"{url}/v1/chat/completions", json=body) for _ in range(8)))

    with running(root, ["base"], max_batch=1, max_queue=1) as (url, _):
        answers = asyncio.run(burst(url))
    codes = sorted(a.status_code for a in answers)
    assert 200 in codes and 429 in codes and set(codes) <= {200, 429}
    for a in answers:
        if a.status_code == 429:
            assert a.json()["error"]["code"] == "server_overloaded" and int(a.headers["retry-after"]) >= 1


@pytest.fixture
def two_versions(finished_runs, tmp_path):  # noqa: F811
    """A registry with v1 and v2 of `support`: two finished LoRA runs whose adapters differ."""
    from safetensors.torch import load_file, save_file

    from tunesmith.serving.registry import ModelRegistry

    second = Path(shutil.copytree(finished_runs[1], tmp_path / "support-v2"))
    weights = second / "adapter" / "adapter_model.safetensors"
    torch.manual_seed(5)
    save_file({k: v + torch.randn_like(v) * 0.5 if "lora_B" in k else v for k, v in load_file(weights).items()},
              weights)
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'registry.db'}")
    assert registry.add("support", finished_runs[0]) == 1 and registry.add("support", second) == 2
    yield registry
    registry.close()


def test_registry_versions_splits_and_rollback_without_restart(root, two_versions):
    registry = two_versions
    ask = dict(messages=HELLO, max_tokens=6, temperature=0)
    with running(root, [], registry=registry) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)

        def answer(model="support", user="alice"):
            raw = client.chat.completions.with_raw_response.create(model=model, user=user, **ask)
            reply = raw.parse()
            assert raw.headers["x-tunesmith-model-version"] == reply.model.split("@")[1]
            return reply

        by_version = {v: answer(f"support@{v}").choices[0].message.content for v in ("v1", "v2")}
        assert by_version["v1"] != by_version["v2"]
        first = answer()
        assert first.model == "support@v1" and first.choices[0].message.content == by_version["v1"]
        assert "support@v1" in {m.id for m in client.models.list().data}

        registry.split("support", {1: 50, 2: 50})
        time.sleep(0.6)  # the server polls the registry's generation every 0.5 s
        seen = {user: answer(user=user) for user in (f"user-{i}" for i in range(12))}
        assert {r.model for r in seen.values()} == {"support@v1", "support@v2"}
        for user, reply in seen.items():  # a subject keeps its version, and that version answers
            assert answer(user=user).model == reply.model
            assert reply.choices[0].message.content == by_version[reply.model.split("@")[1]]

        registry.rollback("support")
        deadline = time.monotonic() + 1.0
        while any(answer(user=u).model != "support@v1" for u in seen) and time.monotonic() < deadline:
            pass
        assert {answer(user=u).model for u in seen} == {"support@v1"}

        assert _post(url, {"completion_id": first.id, "score": 1}, "/v1/feedback").status_code == 200
        unknown = _post(url, {"completion_id": "chatcmpl-nope", "score": 1}, "/v1/feedback")
        assert unknown.status_code == 400 and "unknown completion id" in unknown.json()["error"]["message"]
    assert registry.feedback_of("support") == [(1, 1.0)]
    versions = [version for version, status, _ in registry.requests_of("support") if status == 200]
    assert versions.count(2) >= 1 and len(versions) >= 2 + 1 + 24 + 12


def test_sampled_traffic_log_masks_personal_data(server, client, tmp_path):
    from tunesmith.serving.traffic import TrafficLog

    _, service = server
    service.traffic = TrafficLog(tmp_path / "traffic.jsonl", sample=1.0)
    try:
        ask = [{"role": "user", "content": "mail me at ann.lee@example.com"}]
        answer = client.chat.completions.create(model="lora1", messages=ask, max_tokens=4, temperature=0)
        streamed = client.chat.completions.create(model="lora2", messages=ask, max_tokens=4, temperature=0,
                                                  stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
        service.traffic.sample = 0.0
        client.chat.completions.create(model="lora1", messages=ask, max_tokens=2)
    finally:
        service.traffic = None
    rows = [json.loads(line) for line in (tmp_path / "traffic.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and [r["model"] for r in rows] == ["lora1", "lora2"]
    assert rows[0]["messages"][0]["content"] == "mail me at [EMAIL]" and rows[0]["completion_id"] == answer.id
    assert rows[0]["messages"][-1] == {"role": "assistant", "content": answer.choices[0].message.content}
    assert rows[1]["messages"][-1]["content"] == text


def test_logprobs_are_the_models_own(client, root):
    from transformers import AutoModelForCausalLM

    ids = tiny_tokenizer()("the quick brown", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = torch.log_softmax(AutoModelForCausalLM.from_pretrained(root / "base")(ids).logits[0, -1], -1)
    text = client.completions.create(model="base", prompt="the quick brown", max_tokens=3, temperature=0, logprobs=2)
    scores = text.choices[0].logprobs
    assert len(scores.tokens) == 3 and scores.token_logprobs[0] == pytest.approx(float(expected.max()), abs=1e-4)
    assert list(scores.top_logprobs[0].values())[0] == pytest.approx(float(expected.max()), abs=1e-4)
    chat = client.chat.completions.create(model="lora1", messages=HELLO, max_tokens=4, temperature=0, logprobs=True,
                                          top_logprobs=2)
    content = chat.choices[0].logprobs.content
    assert len(content) == chat.usage.completion_tokens - (chat.choices[0].finish_reason == "stop")
    for entry in content:  # greedy: each chosen token is the most likely one
        assert len(entry.top_logprobs) == 2 and entry.logprob == pytest.approx(entry.top_logprobs[0].logprob)
    streamed = client.chat.completions.create(model="lora1", messages=HELLO, max_tokens=4, temperature=0,
                                              logprobs=True, stream=True)
    assert [e.logprob for c in streamed if c.choices and c.choices[0].logprobs
            for e in c.choices[0].logprobs.content] == pytest.approx([e.logprob for e in content])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="lora1", messages=HELLO, top_logprobs=2)


def test_tools_reach_the_chat_template_either_kind():
    from tunesmith.data.templates import get_template
    from tunesmith.serving.dialect import Dialect

    tools = [{"type": "function", "function": {"name": "f"}}]
    own = tiny_tokenizer("{% if tools %}TOOLS:{{ tools|tojson }}\n{% endif %}{% for m in messages %}<{{ m['role'] }}>"
                         "{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}")
    dialect = Dialect(own, get_template("auto", own), None, frozenset(), "", 256)
    assert own.decode(dialect.chat_prompt([{"role": "user", "content": "hi"}], tools)) == \
        'TOOLS:[{"type": "function", "function": {"name": "f"}}]\n<user>hi<assistant>'
    chatml = tiny_tokenizer()
    dialect = Dialect(chatml, get_template("chatml", chatml), "be nice", frozenset(), "", 256)
    text = chatml.decode(dialect.chat_prompt([{"role": "user", "content": "hi"}], tools))
    assert text.startswith("<|im_start|>system\nbe nice\n\nYou may call these tools:\n[{")
    assert text.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


def test_the_last_adapter_can_go_and_others_come_back(root):
    with running(root, ["lora1"]) as (url, service):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        ask = dict(messages=HELLO, max_tokens=6, temperature=0)
        first = client.chat.completions.create(model="lora1", **ask).choices[0].message.content
        assert httpx.delete(f"{url}/v1/adapters/lora1").status_code == 200
        assert [n for names in service.engine.resident().values() for n in names] == []
        assert _post(url, {"name": "again", "path": "lora1"}, "/v1/adapters").status_code == 200
        assert client.chat.completions.create(model="again", **ask).choices[0].message.content == first
