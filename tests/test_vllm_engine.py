"""The vLLM engine (serving/vllm_engine.py): where vllm cannot be imported, `tunesmith serve
--engine vllm` refuses with one clear line; where it can (a GPU machine with tunesmith[vllm]),
it answers a greedy chat request as the built-in engine does, adapters included."""

from __future__ import annotations

import sys

import pytest

from tunesmith.cli.main import run


def test_serve_engine_vllm_refuses_in_one_line_where_vllm_is_missing(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "vllm", None)  # importing vllm now fails, as on a machine without it
    with pytest.raises(SystemExit) as stop:
        run(["serve", "--engine", "vllm", "--runs-root", str(tmp_path), "--port", "0"])
    out, err = capsys.readouterr()
    errors = [line for line in (out + err).splitlines() if line.startswith("error:")]
    assert stop.value.code == 2 and "Traceback" not in out + err
    assert len(errors) == 1, out + err
    assert "--engine vllm needs the vllm package" in errors[0]
    assert "pip install 'tunesmith[vllm]'" in errors[0] and "--engine local" in errors[0]


def test_an_unknown_engine_is_named(capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        run(["serve", "--engine", "tgi", "--runs-root", str(tmp_path), "--port", "0"])
    out, err = capsys.readouterr()
    assert stop.value.code == 2 and "--engine 'tgi' is not an engine; use one of local, vllm" in out + err


@pytest.fixture(scope="module")
def vllm_root(tmp_path_factory):
    pytest.importorskip("vllm")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vllm needs a GPU")
    from test_serve import _lora
    from tiny import save_tiny_llama

    root = tmp_path_factory.mktemp("vllm")
    base = save_tiny_llama(root / "base")
    _lora(base, root / "lora1", 1)
    return root


@pytest.mark.parametrize("model", ["base", "lora1"])
def test_vllm_answers_a_greedy_request_as_the_local_engine(vllm_root, model):
    import asyncio

    from tunesmith.serving.catalog import Catalog
    from tunesmith.serving.engine import LocalEngine
    from tunesmith.serving.openai import ChatRequest
    from tunesmith.serving.service import Service
    from tunesmith.serving.vllm_engine import VllmEngine

    request = ChatRequest(model=model, messages=[{"role": "user", "content": "hello world"}], max_tokens=8,
                          temperature=0)
    answers = []
    for engine in (LocalEngine(), VllmEngine(gpu_memory_utilization=0.3)):
        service = Service(Catalog(vllm_root, [str(vllm_root / "base"), str(vllm_root / "lora1")]), engine)
        try:
            answers.append(asyncio.run(service.chat(service.begin("chat"), request)))
        finally:
            engine.close()
    local, vllm = answers
    assert vllm["choices"][0]["message"]["content"] == local["choices"][0]["message"]["content"]
    assert vllm["usage"] == local["usage"]
