"""tunesmith serve over gRPC, on a real channel on loopback, beside the HTTP app over one
Service: the same greedy request gives the same answer both ways, predict gives the HTTP
answer, bad input is INVALID_ARGUMENT / NOT_FOUND (never INTERNAL), keys are checked, and the
requests are counted in the same Prometheus metrics."""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager
from pathlib import Path

import grpc
import httpx
import openai
import pytest

from inproc import serving as http_serving
from tiny import save_tiny_llama
from tiny_tasks import save_tiny_bert, sentiment_rows, write_tsv
from tunesmith.server.protos import inference_pb2 as pb
from tunesmith.server.protos import inference_pb2_grpc as pb_grpc

HELLO = [{"role": "user", "content": "hello world, what is your name"}]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    save_tiny_llama(root / "base")
    save_tiny_bert(root / "bert")
    return root


@contextmanager
def serving(root: Path, models: list[str], keys=None):
    """The HTTP app (uvicorn) and the gRPC server over one Service, each on a free loopback port."""

    from tunesmith.server.app import create_app
    from tunesmith.server.grpc_server import start_grpc
    from tunesmith.serving.catalog import Catalog
    from tunesmith.serving.engine import LocalEngine
    from tunesmith.serving.service import Service

    service = Service(Catalog(root, [str(root / m) for m in models]), LocalEngine())
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    grpc_server, grpc_port = asyncio.run_coroutine_threadsafe(start_grpc(service, "127.0.0.1", 0, keys),
                                                              loop).result(30)
    try:
        with http_serving(create_app(service, keys)) as url, grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            yield url, pb_grpc.InferenceStub(channel), service
    finally:
        asyncio.run_coroutine_threadsafe(grpc_server.stop(0), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        service.engine.close()


@pytest.fixture(scope="module")
def served(root):
    with serving(root, ["base", "bert"]) as both:
        yield both


def _ask(**kw) -> pb.GenerateRequest:
    return pb.GenerateRequest(model="base", messages=[pb.ChatMessage(**m) for m in HELLO], **kw)


def test_generate_equals_the_http_chat_answer(served):
    url, stub, _ = served
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    http = client.chat.completions.create(model="base", messages=HELLO, max_tokens=8, temperature=0)
    reply = stub.Generate(_ask(max_tokens=8, temperature=0), timeout=60)
    assert reply.text == http.choices[0].message.content and reply.model == "base"
    assert reply.finish_reason == http.choices[0].finish_reason
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (http.usage.prompt_tokens,
                                                                          http.usage.completion_tokens)
    chunks = list(stub.GenerateStream(_ask(max_tokens=8, temperature=0), timeout=60))
    assert "".join(c.text for c in chunks) == reply.text
    assert [c.finish_reason for c in chunks if c.finish_reason] == [reply.finish_reason]
    assert chunks[-1].usage == reply.usage


def test_predict_equals_the_http_answer(root, served, tiny_config, tmp_path):
    from tunesmith.training.runner import train

    url, stub, _ = served
    train_file = write_tsv(tmp_path / "train.tsv", ["sentence", "label"], sentiment_rows(16))
    train(tiny_config(model={"name_or_path": str(root / "bert")}, method={"name": "full"},
                      data={"train": [str(train_file)], "eval_ratio": 0, "cutoff_len": 32},
                      task={"name": "classification", "text_column": "sentence"},
                      train={"max_steps": 2, "batch_size": 8, "save_steps": 100},
                      output={"dir": str(root / "sentiment")}))
    rows = [{"sentence": "quick brown fox"}, {"sentence": "lazy dog who"}]
    http = httpx.post(f"{url}/v1/predict", json={"model": "sentiment", "input": rows}, timeout=60).json()
    from google.protobuf.json_format import MessageToDict, ParseDict
    from google.protobuf.struct_pb2 import Struct

    reply = stub.Predict(pb.PredictRequest(model="sentiment", rows=[ParseDict(r, Struct()) for r in rows]),
                         timeout=60)
    assert list(reply.labels) == http["labels"] == ["negative", "positive"] and reply.task == "classification"
    got = [MessageToDict(r) for r in reply.rows]
    assert [r["label"] for r in got] == [r["label"] for r in http["data"]]
    for mine, theirs in zip(got, http["data"]):
        assert mine["probabilities"] == pytest.approx(theirs["probabilities"], abs=1e-6)


@pytest.mark.parametrize("call, request_, code", [
    ("Generate", dict(model="no-such-model"), grpc.StatusCode.NOT_FOUND),
    ("Generate", dict(model="../base"), grpc.StatusCode.NOT_FOUND),
    ("GenerateStream", dict(model="no-such-model"), grpc.StatusCode.NOT_FOUND),
    ("Generate", dict(messages=[]), grpc.StatusCode.INVALID_ARGUMENT),
    ("Generate", dict(messages=[pb.ChatMessage(role="wizard", content="x")]), grpc.StatusCode.INVALID_ARGUMENT),
    ("Generate", dict(max_tokens=100000), grpc.StatusCode.INVALID_ARGUMENT),
    ("GenerateStream", dict(max_tokens=100000), grpc.StatusCode.INVALID_ARGUMENT),
    ("Generate", dict(temperature=9), grpc.StatusCode.INVALID_ARGUMENT),
    ("Generate", dict(tools_json="[not json"), grpc.StatusCode.INVALID_ARGUMENT),
    ("Generate", dict(tool_choice="required"), grpc.StatusCode.INVALID_ARGUMENT),
    ("Generate", dict(model="bert"), grpc.StatusCode.INVALID_ARGUMENT),
    ("Predict", dict(model="base"), grpc.StatusCode.INVALID_ARGUMENT),
    ("Predict", dict(model="no-such-model"), grpc.StatusCode.NOT_FOUND),
])
def test_bad_input_is_invalid_argument_or_not_found(served, call, request_, code):
    _, stub, _ = served
    if call == "Predict":
        from google.protobuf.struct_pb2 import Struct

        message = pb.PredictRequest(rows=[Struct()], **request_)
    else:
        fields = {"model": "base", "messages": [pb.ChatMessage(**m) for m in HELLO], "max_tokens": 2, **request_}
        message = pb.GenerateRequest(**fields)
    with pytest.raises(grpc.RpcError) as err:
        answer = getattr(stub, call)(message, timeout=60)
        if call == "GenerateStream":
            list(answer)
    assert err.value.code() == code, err.value.details()
    assert err.value.details()
    assert stub.Generate(_ask(max_tokens=2), timeout=60).usage.completion_tokens >= 1  # still serving


def test_requests_count_in_the_same_metrics(served):
    _, stub, service = served

    def count(status: str) -> float:
        value = service.metrics.registry.get_sample_value(
            "tunesmith_requests_total", {"model": "base", "version": "", "endpoint": "grpc_generate",
                                         "status": status})
        return value or 0.0

    before_ok, before_bad = count("200"), count("400")
    for _ in range(3):
        stub.Generate(_ask(max_tokens=2), timeout=60)
    list(stub.GenerateStream(_ask(max_tokens=2), timeout=60))
    with pytest.raises(grpc.RpcError):
        stub.Generate(_ask(max_tokens=100000), timeout=60)
    assert count("200") - before_ok == 4 and count("400") - before_bad == 1


def test_api_keys_come_as_metadata(root):
    from tunesmith.serving.security import ApiKeys

    with serving(root, ["base"], ApiKeys.load(["secret"], None)) as (_, stub, _):
        with pytest.raises(grpc.RpcError) as err:
            stub.Generate(_ask(max_tokens=2), timeout=60)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            stub.Generate(_ask(max_tokens=2), metadata=[("authorization", "Bearer wrong")], timeout=60)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        reply = stub.Generate(_ask(max_tokens=2), metadata=[("authorization", "Bearer secret")], timeout=60)
        assert reply.usage.completion_tokens >= 1
