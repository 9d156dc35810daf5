"""tunesmith serve on an ONNX export (`export --to onnx`, onnxruntime): chat and completions answer
as the PyTorch run does (greedy), streamed or not, with usage and finish_reason; what an ONNX
export does not serve is a one-line 400."""

from __future__ import annotations

import httpx
import openai
import pytest
import torch

from finished_runs import finished_runs  # noqa: F401  (fixture)
from inproc import serving

ASK = [{"role": "user", "content": "what is 3 plus 3?"}]
# torch.onnx's export takes 10 s and more even for the tiny llama: slow, as in test_exporters_contract.py
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(finished_runs, tmp_path_factory):  # noqa: F811
    """The run's ONNX export, written by the onnx exporter (without the export's timing report)."""
    from tunesmith.export.onnx import OnnxOptions, export_onnx
    from tunesmith.export.source import load_source

    run = finished_runs[0]
    out = tmp_path_factory.mktemp("onnx") / "onnx"
    out.mkdir()
    export_onnx(load_source(str(run)), out, OnnxOptions())
    return run, out


@pytest.fixture(scope="module")
def server(exported):
    from tunesmith.server.app import create_app
    from tunesmith.serving.catalog import Catalog
    from tunesmith.serving.engine import LocalEngine
    from tunesmith.serving.service import Service

    run, out = exported
    service = Service(Catalog(out.parent, [str(out)]), LocalEngine())
    try:
        with serving(create_app(service)) as url:
            yield url
    finally:
        service.engine.close()


def test_onnx_export_answers_as_the_pytorch_run(exported, server):
    from tunesmith.inference.generate import generate_replies
    from tunesmith.inference.load import load_for_inference

    run, out = exported
    loaded = load_for_inference(str(run))
    want = generate_replies(loaded, [ASK], max_new_tokens=8)[0]
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="x", max_retries=0)
    whole = client.chat.completions.create(model="onnx", messages=ASK, max_tokens=8, temperature=0)
    assert whole.choices[0].message.content.strip() == want  # the library strips the reply; the API does not
    prompt = loaded.tokenizer.apply_chat_template(ASK, tokenize=False, add_generation_prompt=True)
    assert whole.usage.prompt_tokens == len(loaded.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert whole.choices[0].finish_reason == ("length" if whole.usage.completion_tokens == 8 else "stop")
    chunks = list(client.chat.completions.create(model="onnx", messages=ASK, max_tokens=8, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    assert chunks[-1].usage == whole.usage

    ids = loaded.tokenizer("the quick brown", return_tensors="pt")
    with torch.no_grad():
        out_ids = loaded.model.generate(**ids, max_new_tokens=5, do_sample=False, eos_token_id=None,
                                        pad_token_id=loaded.tokenizer.pad_token_id)
    text = client.completions.create(model="onnx", prompt="the quick brown", max_tokens=5, temperature=0)
    assert text.choices[0].text == loaded.tokenizer.decode(out_ids[0, ids["input_ids"].shape[1]:],
                                                           skip_special_tokens=True)
    assert text.usage.completion_tokens == 5 and text.choices[0].finish_reason == "length"
    seeded = dict(model="onnx", prompt="the quick brown", max_tokens=5, temperature=1.5, seed=3)
    assert client.completions.create(**seeded).choices[0].text == client.completions.create(**seeded).choices[0].text


def test_what_an_onnx_export_does_not_serve_is_a_400(server):
    for path, body in [("/v1/predict", {"model": "onnx", "input": {"text": "hi"}}),
                       ("/v1/embeddings", {"model": "onnx", "input": "hi"})]:
        answer = httpx.post(server + path, json=body, timeout=30)
        assert answer.status_code == 400, answer.text
        assert "ONNX export" in answer.json()["error"]["message"]
    models = httpx.get(f"{server}/v1/models", timeout=30).json()["data"]
    assert {m["id"]: m["kind"] for m in models}["onnx"] == "onnx"
