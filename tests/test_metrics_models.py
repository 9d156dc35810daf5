"""Embedding metrics (tiny BERT in code; minilm-l6 in the slow test) and the LLM judge against a
local OpenAI-compatible server on 127.0.0.1."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tunesmith.metrics import METRICS
from tunesmith.metrics.text_utils import MetricInputError


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run fastest on one thread, and far faster than many on a shared, loaded CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)



@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "in", "park", "today", "weather", "is", "nice"]
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizerFast(str(path / "vocab.txt")).save_pretrained(path)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=5 + len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(path)
    return str(path)


def test_identical_texts_score_one_and_different_texts_less(tiny_bert):
    preds = ["the cat sat on a mat", "the dog ran in a park"]
    refs = ["the cat sat on a mat", "today the weather is nice"]
    sim = METRICS.get("embedding_similarity").compute(preds, refs, model=tiny_bert)
    assert sim["rows"][0]["embedding_similarity"] == pytest.approx(1.0, abs=1e-5)
    assert sim["rows"][1]["embedding_similarity"] < 0.999
    bs = METRICS.get("bertscore").compute(preds, refs, model=tiny_bert)
    assert bs["rows"][0]["bertscore_f1"] == pytest.approx(1.0, abs=1e-5)
    assert bs["rows"][1]["bertscore_f1"] < bs["rows"][0]["bertscore_f1"]
    assert bs["bertscore_f1"] == pytest.approx((bs["rows"][0]["bertscore_f1"] + bs["rows"][1]["bertscore_f1"]) / 2)


def test_bertscore_greedy_matching_by_hand():
    import torch

    from tunesmith.metrics.embedding import _greedy_match

    # pred tokens e1, e2; ref token e1: precision = (1 + 0) / 2, recall = 1, F1 = 2/3.
    pred, ref = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0]])
    scores = _greedy_match(pred, ref)
    assert scores["bertscore_precision"] == pytest.approx(0.5)
    assert scores["bertscore_recall"] == pytest.approx(1.0)
    assert scores["bertscore_f1"] == pytest.approx(2 / 3)


@pytest.mark.slow
def test_minilm_paraphrase_scores_above_unrelated():
    sim = METRICS.get("embedding_similarity").compute(
        ["A man is playing a guitar.", "A man is playing a guitar."],
        ["Someone plays the guitar.", "The stock market fell sharply today."])
    close, far = (r["embedding_similarity"] for r in sim["rows"])
    assert close > 0.6 > far


class _Judge(BaseHTTPRequestHandler):
    """Scores 5 when the answer mentions Paris, 1 otherwise; fails with 500 on 'crash'."""

    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Judge.seen.append((self.path, self.headers.get("Authorization"), body))
        text = body["messages"][1]["content"]
        if "crash" in text:
            self.send_response(500)
            self.end_headers()
            return
        answer = text.split("Answer to grade:")[1].split("Reference answer:")[0]
        score = 5 if "Paris" in answer else 1
        reply = {"choices": [{"message": {"role": "assistant",
                                          "content": json.dumps({"score": score, "reason": "checked"})}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def judge_url():
    server = HTTPServer(("127.0.0.1", 0), _Judge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Judge.seen.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_judge_scores_rows_and_records_a_failed_row(judge_url, monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "secret")
    result = METRICS.get("judge").compute(
        ["Paris.", "Lyon, I think.", "crash"], ["Paris", "Paris", "Paris"],
        prompts=["Capital of France?"] * 3, endpoint=judge_url, rubric="Correct capital city?",
        api_key_env="JUDGE_KEY", workers=1)
    assert result["judge_score"] == pytest.approx(3.0)  # (5 + 1) / 2; the failed row is left out
    assert result["judge_failed_rows"] == 1.0
    assert "HTTP 500" in result["rows"][2]["note"] and "judge_score" not in result["rows"][2]
    path, auth, body = _Judge.seen[0]
    assert path == "/v1/chat/completions" and auth == "Bearer secret"
    assert "Correct capital city?" in body["messages"][0]["content"]
    assert "Capital of France?" in body["messages"][1]["content"]


def test_judge_endpoint_failing_everywhere_is_a_clear_error(judge_url):
    with pytest.raises(MetricInputError, match="failed on every row"):
        METRICS.get("judge").compute(["crash"], None, endpoint=judge_url)
    with pytest.raises(MetricInputError, match="failed on every row"):
        METRICS.get("judge").compute(["x"], None, endpoint="http://127.0.0.1:9/v1", timeout=2)
    with pytest.raises(MetricInputError, match="needs an endpoint"):
        METRICS.get("judge").compute(["x"], None)


def test_judge_reply_parsing():
    from tunesmith.metrics.llm_judge import parse_score

    assert parse_score('{"score": 4, "reason": "ok"}') == (4.0, "ok")
    assert parse_score("Score: 3/5 because...")[0] == 3.0
    with pytest.raises(ValueError):
        parse_score("no idea")


def test_judge_failure_on_one_row_is_recorded_in_the_eval_report(judge_url, tiny_model_dir, chat_file, tmp_path):
    from tunesmith.cli.main import run as cli

    rows = [json.loads(line) for line in chat_file.read_text().splitlines()[:3]]
    rows[1]["messages"][0]["content"] = "crash now"
    data = tmp_path / "judge.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "eval"
    cli(["eval", str(tiny_model_dir), "--data", str(data), "--metrics", "judge", "--max-new-tokens", "4",
         "--metric-option", f"judge.endpoint={judge_url}", "--metric-option", "judge.workers=1", "--output", str(out)])
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert "judge failed: HTTP 500" in predictions[1]["notes"]["judge"]
    assert predictions[0]["scores"]["judge_score"] == 1.0 and "judge_score" not in predictions[1]["scores"]
    report = json.loads((out / "report.json").read_text())
    assert report["scores"][report["models"][0]]["judge_failed_rows"] == 1.0
