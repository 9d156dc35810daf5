"""One contract over every registered metric: adding a metric to METRICS adds it here.

Each metric has a CASE: inputs and the scores the reference implementation gives for them
(sacrebleu, rouge-score, sklearn), or scores worked out by hand / by plain torch where there is
no reference library. For every metric: its headline scores equal the reference; every score
is a finite float and "rows" has one entry per prediction; the order of the rows does not change
a score; and where a case names perfect predictions, they score at least as well as the case's.
A metric without a case fails `test_every_metric_has_a_reference_case` with what to add.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import sacrebleu
import torch
from rouge_score import rouge_scorer
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from tunesmith.metrics import METRICS

EN_PREDS = ["the cat sat on the mat", "a quick brown fox jumped over dogs", "nothing in common here",
            "hello world"]
EN_REFS = ["the cat is on the mat", "the quick brown fox jumps over the lazy dog", "completely different words",
           "hello there world"]


def _call(name: str, arguments: str) -> str:
    return json.dumps([{"type": "function", "function": {"name": name, "arguments": arguments}}])


TOOL_REFS = [_call("get_weather", '{"city": "Paris", "unit": "C"}'), _call("get_weather", '{"city": "Paris"}'),
             _call("get_time", "{}"), "Hello!", "Sure.", _call("get_weather", '{"city": "Paris"}')]
TOOL_PREDS = [json.dumps({"name": "get_weather", "arguments": {"unit": "C", "city": "Paris"}}),  # exact
              _call("get_weather", '{"city": "Lyon"}'),  # right function, wrong argument
              "It is noon.",  # no call where one is expected
              "Hi there",  # no call, none expected
              _call("get_weather", "{}"),  # a call where none is expected
              _call("get_weather", "{city: Paris")]  # right function, arguments not JSON
LABEL_PREDS, LABEL_REFS, LABELS = [0, 1, 1, 2, 2, 2, 0], [0, 1, 2, 2, 2, 0, 1], ["a", "b", "c"]


@dataclass
class Case:
    predictions: list
    references: list | None
    expected: Callable[[], dict]  # the reference scores for these inputs
    options: dict = field(default_factory=dict)
    perfect: list | None = None  # predictions that must score at least as well


def _rouge() -> dict:
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    scores = [scorer.score(r, p) for p, r in zip(EN_PREDS, EN_REFS)]
    return {k: sum(s[k].fmeasure for s in scores) / len(scores) for k in ("rouge1", "rouge2", "rougeL")}


def _bleu() -> dict:
    corpus = sacrebleu.corpus_bleu(EN_PREDS, [EN_REFS])
    return {"bleu": corpus.score, "bleu_brevity_penalty": corpus.bp}


def _classification() -> dict:
    scores = {"accuracy": accuracy_score(LABEL_REFS, LABEL_PREDS)}
    for average in ("macro", "micro"):
        p, r, f, _ = precision_recall_fscore_support(LABEL_REFS, LABEL_PREDS, labels=[0, 1, 2], average=average,
                                                     zero_division=0)
        scores.update({f"{average}_precision": p, f"{average}_recall": r, f"{average}_f1": f})
    return scores


def _squad() -> dict:
    # per row (EM, F1): exact after normalising "The" (1, 1); "denver broncos" vs "broncos" P=1/2 R=1
    # (0, 2/3); unanswerable and empty (1, 1); unanswerable but answered (0, 0).
    return {"exact_match": 100 * 2 / 4, "f1": 100 * (1 + 2 / 3 + 1 + 0) / 4}


def _perplexity() -> dict:
    # 2 + 3 + 1 tokens at 1.0, 1.5, 0.5 nats summed; the row with no tokens is skipped
    loss = (1.0 + 1.5 + 0.5) / 6
    return {"perplexity": math.exp(loss), "loss": loss}


REGEX_OUTPUTS = ["42", "x42", " 7 ", "1000", ""]
JSON_OUTPUTS = ['{"a": 1}', '```json\n[1, 2]\n```', "{'a': 1}", "not json", "3"]


def _judge_expected() -> dict:
    # the judge below scores 5 when the answer repeats the reference, else 2
    return {"judge_score": (5 + 2 + 5) / 3, "judge_failed_rows": 0.0}


class _Judge(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["messages"][1]["content"]
        answer = text.split("Answer to grade:")[1].split("Reference answer:")[0].strip()
        reference = text.split("Reference answer:")[1].strip()
        score = 5 if answer and reference.startswith(answer) else 2
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": json.dumps(
            {"score": score, "reason": "compared"})}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def judge_url():
    server = HTTPServer(("127.0.0.1", 0), _Judge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> str:
    from tiny_tasks import save_tiny_bert

    return str(save_tiny_bert(tmp_path_factory.mktemp("encoder")))


@lru_cache(maxsize=1)
def _plain_encoder(path: str):
    from transformers import AutoModel, AutoTokenizer

    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


def _token_embeddings(encoder: str, text: str) -> torch.Tensor:
    """By plain transformers, one text at a time (no padding): the tokens' last hidden states."""
    tokenizer, model = _plain_encoder(encoder)
    batch = tokenizer(text, return_tensors="pt", return_special_tokens_mask=True)
    keep = batch.pop("special_tokens_mask")[0] == 0
    with torch.no_grad():
        return model(**batch).last_hidden_state[0][keep]


def _cos(a, b):
    return torch.nn.functional.cosine_similarity(a.unsqueeze(1), b.unsqueeze(0), dim=-1)


def _embedding_expected(encoder: str) -> dict:
    sims = [float(_cos(_token_embeddings(encoder, p).mean(0, keepdim=True),
                       _token_embeddings(encoder, r).mean(0, keepdim=True))) for p, r in zip(EN_PREDS, EN_REFS)]
    return {"embedding_similarity": sum(sims) / len(sims)}


def _bertscore_expected(encoder: str) -> dict:
    rows = []
    for p, r in zip(EN_PREDS, EN_REFS):
        sim = _cos(_token_embeddings(encoder, p), _token_embeddings(encoder, r))
        precision, recall = float(sim.max(1).values.mean()), float(sim.max(0).values.mean())
        rows.append((precision, recall, 2 * precision * recall / (precision + recall)))
    return {f"bertscore_{k}": sum(row[i] for row in rows) / len(rows)
            for i, k in enumerate(("precision", "recall", "f1"))}


@pytest.fixture(scope="module")
def cases(encoder, judge_url) -> dict[str, Case]:
    return {
        "bleu": Case(EN_PREDS, EN_REFS, _bleu, perfect=EN_REFS),
        "rouge": Case(EN_PREDS, EN_REFS, _rouge, perfect=EN_REFS),
        "accuracy": Case(LABEL_PREDS, LABEL_REFS, lambda: {"accuracy": accuracy_score(LABEL_REFS, LABEL_PREDS)},
                         perfect=LABEL_REFS),
        "classification": Case(LABEL_PREDS, LABEL_REFS, _classification, {"labels": LABELS}, perfect=LABEL_REFS),
        "squad": Case(["The Denver Broncos", "Denver Broncos", "", "something"],
                      [["Denver Broncos"], ["Broncos"], [], []], _squad,
                      perfect=["Denver Broncos", "Broncos", "", ""]),
        "perplexity": Case([{"nll": 1.0, "tokens": 2}, {"nll": 1.5, "tokens": 3}, {"nll": 0.0, "tokens": 0},
                            {"nll": 0.5, "tokens": 1}], None, _perplexity),
        # outputs are matched without surrounding whitespace: "42", " 7 ", "1000"
        "regex": Case(REGEX_OUTPUTS, None, lambda: {"regex_match": sum(
            bool(re.fullmatch(r"\d+", o.strip())) for o in REGEX_OUTPUTS) / len(REGEX_OUTPUTS)}, {"pattern": r"\d+"}),
        # '{"a": 1}', the fenced [1, 2] and "3" parse; the single-quoted dict and prose do not
        "json": Case(JSON_OUTPUTS, None, lambda: {"json_valid": 3 / 5}),
        # by hand (see TOOL_PREDS): names right in rows 1, 2, 6 of the 4 expecting a call; valid
        # JSON arguments in rows 1, 2; exact only row 1; no call where none expected: row 4 of 4, 5
        "tool_calls": Case(TOOL_PREDS, TOOL_REFS, lambda: {
            "tool_call_name": 3 / 4, "tool_call_valid_json": 2 / 4, "tool_call_exact": 1 / 4,
            "tool_call_none": 1 / 2, "tool_call_accuracy": 2 / 6}, perfect=TOOL_REFS),
        "judge": Case(["Paris", "Lyon", "Rome"], ["Paris is the capital", "Paris", "Rome"], _judge_expected,
                      {"endpoint": judge_url, "workers": 1}, perfect=["Paris is the capital", "Paris", "Rome"]),
        "embedding_similarity": Case(EN_PREDS, EN_REFS, lambda: _embedding_expected(encoder), {"model": encoder},
                                     perfect=EN_REFS),
        "bertscore": Case(EN_PREDS, EN_REFS, lambda: _bertscore_expected(encoder), {"model": encoder},
                          perfect=EN_REFS),
    }


@pytest.fixture(params=METRICS.names())
def metric(request, cases):
    spec = METRICS.get(request.param)
    if spec.name not in cases:
        pytest.fail(f"metric {spec.name!r} has no reference case: add one to `cases` in {__name__} "
                    "(inputs and the scores a reference implementation or a hand count gives)")
    return spec, cases[spec.name]


def _scores(spec, predictions, references, options) -> dict:
    return spec.compute(list(predictions), None if references is None else list(references), **options)


def _headline(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "rows"}


def test_headline_scores_equal_the_reference(metric):
    spec, case = metric
    result = _headline(_scores(spec, case.predictions, case.references, case.options))
    expected = case.expected()
    assert set(result) == set(expected), "every score the metric reports has a reference value"
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-6), key


def test_scores_are_finite_floats_with_one_row_per_prediction(metric):
    spec, case = metric
    result = _scores(spec, case.predictions, case.references, case.options)
    assert all(isinstance(v, float) and math.isfinite(v) for v in _headline(result).values()), result
    if "rows" in result:
        assert len(result["rows"]) == len(case.predictions)


def test_row_order_does_not_change_a_score(metric):
    spec, case = metric
    forward = _headline(_scores(spec, case.predictions, case.references, case.options))
    references = None if case.references is None else case.references[::-1]
    backward = _headline(_scores(spec, case.predictions[::-1], references, case.options))
    assert backward == pytest.approx(forward, abs=1e-9)


def test_perfect_predictions_score_at_least_as_well(metric):
    spec, case = metric
    if case.perfect is None:
        pytest.skip(f"{spec.name} scores outputs alone")
    key = next(iter(case.expected()))
    given = _scores(spec, case.predictions, case.references, case.options)[key]
    perfect = _scores(spec, case.perfect, case.references, case.options)[key]
    assert (perfect >= given) if spec.greater_is_better else (perfect <= given)
    assert perfect != given, f"{spec.name}: the case's predictions are already perfect"


def test_every_metric_has_a_reference_case(cases):
    missing = sorted(set(METRICS.names()) - set(cases))
    assert not missing, f"metrics without a reference case: {missing}"
