"""ONNX exports of encoders (`tunesmith export --to onnx` on a classification run or a plain encoder),
served through onnxruntime: /v1/predict answers with the run's labels and probabilities, and
/v1/embeddings with the mean pooled vectors, as the PyTorch run and model do; what an export does
not serve is a 4xx."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
import torch

from inproc import serving
from tiny_tasks import save_tiny_bert, sentiment_rows, write_tsv

ROWS = [{"sentence": "quick brown fox"}, {"sentence": "lazy dog who"}, {"sentence": "hello world jumps over"}]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A runs root: a tiny BERT, a classification run on it, and both exported to ONNX by run_export."""
    from tunesmith.config import validate_config
    from tunesmith.export.pipeline import run_export
    from tunesmith.training.runner import train

    root = tmp_path_factory.mktemp("runs")
    bert = save_tiny_bert(root / "bert")
    train_file = write_tsv(root / "train.tsv", ["sentence", "label"], sentiment_rows(16))
    run = train(validate_config({
        "model": {"name_or_path": str(bert)}, "method": {"name": "full"},
        "data": {"train": [str(train_file)], "eval_ratio": 0, "cutoff_len": 32},
        "task": {"name": "classification", "text_column": "sentence"},
        "train": {"max_steps": 2, "batch_size": 8, "save_steps": 100, "precision": "fp32"},
        "output": {"dir": str(root / "sentiment")}})).run_dir
    run_export(str(run), "onnx", str(root / "sentiment-onnx"))
    run_export(str(bert), "onnx", str(root / "bert-onnx"))
    return root


@pytest.fixture(scope="module")
def url(root):
    from tunesmith.server.app import create_app
    from tunesmith.serving.catalog import Catalog
    from tunesmith.serving.engine import LocalEngine
    from tunesmith.serving.service import Service

    names = ["sentiment", "sentiment-onnx", "bert", "bert-onnx"]
    service = Service(Catalog(root, [str(root / n) for n in names]), LocalEngine())
    try:
        with serving(create_app(service)) as base:
            yield base
    finally:
        service.engine.close()


def _post(url: str, path: str, body) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=60)


def test_the_exports_pass_their_parity_check_and_keep_the_label_map(root):
    for name, files in [("sentiment-onnx", {"model.onnx", "config.json", "run_config.json"}),
                        ("bert-onnx", {"model.onnx", "config.json"})]:
        report = json.loads((root / name / "export_report.json").read_text())
        assert files <= set(report["files"])
        assert report["parity"]["max_abs_logit_diff"] <= 1e-4
        assert report["parity"]["greedy_equal_prompts"] == report["parity"]["prompts"] == 6
    saved = json.loads((root / "sentiment-onnx" / "run_config.json").read_text())
    assert saved["task"]["labels"] == ["negative", "positive"]
    assert "run_config.json" not in set(json.loads((root / "bert-onnx" / "export_report.json").read_text())["files"])


def test_classification_export_predicts_as_the_pytorch_run(url):
    want = _post(url, "/v1/predict", {"model": "sentiment", "input": ROWS}).json()
    got = _post(url, "/v1/predict", {"model": "sentiment-onnx", "input": ROWS}).json()
    assert got["labels"] == want["labels"] == ["negative", "positive"]
    assert got["task"] == want["task"] == "classification" and got["model"] == "sentiment-onnx"
    assert len(got["data"]) == len(ROWS)
    for mine, theirs in zip(got["data"], want["data"]):
        assert mine.keys() == theirs.keys()
        assert mine["label"] == theirs["label"] and mine["text"] == theirs["text"]
        assert mine["probabilities"] == pytest.approx(theirs["probabilities"], abs=1e-5)
        assert mine["score"] == pytest.approx(theirs["score"], abs=1e-5)


def test_encoder_export_embeds_as_the_pytorch_model(url):
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    texts = ["hello world", "the lazy dog jumps over the quick brown fox"]
    want = client.embeddings.create(model="bert", input=texts)
    got = client.embeddings.create(model="bert-onnx", input=texts)  # base64, as the client asks
    assert got.model == "bert-onnx" and got.usage == want.usage and len(got.data) == 2
    for mine, theirs in zip(got.data, want.data):
        assert len(mine.embedding) == 32
        torch.testing.assert_close(torch.tensor(mine.embedding), torch.tensor(theirs.embedding), atol=1e-5, rtol=1e-4)
    floats = client.embeddings.create(model="bert-onnx", input="hello world", encoding_format="float")
    torch.testing.assert_close(torch.tensor(floats.data[0].embedding), torch.tensor(got.data[0].embedding))


@pytest.mark.parametrize("path, body, status, says", [
    ("/v1/embeddings", {"model": "sentiment-onnx", "input": "hi"}, 400, "serves predict, not embeddings"),
    ("/v1/predict", {"model": "bert-onnx", "input": [{"text": "hi"}]}, 400, "serves embeddings, not predict"),
    ("/v1/chat/completions", {"model": "bert-onnx", "messages": [{"role": "user", "content": "hi"}]}, 400,
     "does not generate text"),
    ("/v1/predict", {"model": "sentiment-onnx", "input": 5}, 400, None),
    ("/v1/embeddings", {"model": "bert-onnx"}, 400, None),
])
def test_what_an_encoder_export_does_not_serve_is_a_4xx(url, path, body, status, says):
    answer = _post(url, path, body)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["message"] and error["type"]
    if says:
        assert says in error["message"]
    assert _post(url, "/v1/predict", {"model": "sentiment-onnx", "input": ROWS[:1]}).status_code == 200


def test_a_bad_row_fails_as_it_does_on_the_pytorch_run(url):
    bad = {"input": [{"review": "no sentence column"}]}
    want = _post(url, "/v1/predict", {"model": "sentiment", **bad})
    got = _post(url, "/v1/predict", {"model": "sentiment-onnx", **bad})
    assert got.status_code == want.status_code and 400 <= got.status_code < 500, got.text
    assert got.json()["error"]["message"] == want.json()["error"]["message"]


def test_other_formats_refuse_a_classification_run_in_one_line(root):
    from tunesmith.export import ExportError
    from tunesmith.export.pipeline import run_export

    with pytest.raises(ExportError, match="merged export takes causal LMs; .* is a classification model. "
                                          "Formats for it: onnx"):
        run_export(str(root / "sentiment"), "merged", str(root / "never"))
    assert not (root / "never").exists()


def test_a_graph_that_is_not_what_its_folder_says_is_a_400(root, tmp_path):
    import shutil

    from tunesmith.serving.catalog import describe
    from tunesmith.serving.engine import LocalEngine
    from tunesmith.serving.errors import BadRequest

    odd = shutil.copytree(root / "sentiment-onnx", tmp_path / "odd")  # logits, but no run config: not an encoder
    (odd / "run_config.json").unlink()
    engine = LocalEngine()
    with pytest.raises(BadRequest, match="maps input_ids, attention_mask to logits; tunesmith serves encoder graphs "
                                         "to last_hidden_state"):
        engine.embed(describe(str(odd)), ["hello"])
    engine.close()
