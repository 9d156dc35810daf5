"""Extractive QA: windows keep the answer's characters, n-best decoding, SQuAD files, bad rows, training."""

import json

import numpy as np
import pytest

from tiny import tiny_tokenizer
from tiny_tasks import save_tiny_bert
from tunesmith.config import validate_config
from tunesmith.errors import DataError
from tunesmith.tasks.qa import decode, expand_records, read_examples, windows
from tunesmith.tasks.rows import RowsReport
from tunesmith.training.runner import train

CONTEXT = ("the quick brown fox jumps over the lazy dog. " * 6) + "hello world, my name is assistant. " + \
          ("the lazy dog sleeps. " * 6)


def _config(**task):
    return validate_config({"task": {"name": "qa", **task}, "data": {"cutoff_len": 48}})


def test_long_context_windows_keep_the_answer_span():
    tok = tiny_tokenizer()
    config = _config(doc_stride=16)
    start = CONTEXT.index("assistant")
    examples = read_examples([{"question": "what is my name?", "context": CONTEXT,
                               "answers": {"text": ["assistant"], "answer_start": [start]}}], config, RowsReport())
    feats = windows(examples, tok, config)
    assert len(feats) > 2  # the context needed several overlapping windows
    holding = [f for f in feats if f["start_positions"] > 0]
    assert holding, "some window must contain the answer"
    for f in holding:
        s, e = f["offsets"][f["start_positions"]][0], f["offsets"][f["end_positions"]][1]
        assert CONTEXT[s:e].strip() == "assistant"
    assert all(f["start_positions"] == f["end_positions"] == 0 for f in feats if f not in holding)


def test_nbest_decoding_respects_context_and_max_length_by_hand():
    context = "alpha beta gamma delta"
    example = {"context": context, "answers": []}
    offsets = [None, None, (0, 5), (6, 10), (11, 16), (17, 22)]  # two question tokens, four context words
    feature = {"example": example, "offsets": offsets}
    start = np.array([10.0, 0, 1, 5, 0, 0])  # best start is a question token: must be ignored
    end = np.array([0.0, 9, 0, 0, 2, 4])
    cfg = _config(max_answer_length=2, n_best=5).task
    # candidates inside the context with length <= 2: beta..gamma (5+2), beta (5+0)...; beta..delta is 3 long
    (text, score), = decode([example], [feature], [start], [end], cfg)
    assert text == "beta gamma" and score == 7.0
    cfg = _config(max_answer_length=3, n_best=5).task
    assert decode([example], [feature], [start], [end], cfg)[0][0] == "beta gamma delta"
    cfg = _config(allow_no_answer=True).task  # null score 10+0 beats the best span 5+4
    assert decode([example], [feature], [start], [end], cfg)[0][0] == ""


def squad_file(path, bad=False):
    qas = [{"id": "q1", "question": "who jumps?", "answers": [{"text": "fox", "answer_start": 16}]},
           {"id": "q2", "question": "who sleeps?", "is_impossible": True, "answers": []},
           {"id": "q3", "question": "what colour?", "answers": [{"text": "purple" if bad else "brown",
                                                                    "answer_start": 10}]}]
    data = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [
        {"context": "the quick brown fox jumps over the lazy dog", "qas": qas}]}]}
    path.write_text(json.dumps(data, indent=1))
    return path


def test_squad_v2_file_expands_per_question_and_reports_missing_answer(tmp_path):
    from tunesmith.data.load import load_records

    records, _ = load_records([str(squad_file(tmp_path / "s.json"))], "rows")
    flat = expand_records(records)
    assert [r["id"] for r in flat] == ["q1", "q2", "q3"] and flat[1]["_origin"].endswith("qas[1] (id q2)")
    examples = read_examples(flat, _config(), RowsReport())
    assert examples[0]["starts"] == [16] and examples[1]["answers"] == []
    records, _ = load_records([str(squad_file(tmp_path / "bad.json", bad=True))], "rows")
    with pytest.raises(DataError, match=r"bad.json:1 data\[0\].paragraphs\[0\].qas\[2\] \(id q3\): answer 'purple' "
                                        r"is not in the context"):
        read_examples(expand_records(records), _config(), RowsReport())


def qa_rows(path, n):
    names = ["fox", "dog", "cat", "owl"]
    rows = []
    for i in range(n):
        name = names[i % 4]
        context = f"the quick brown {name} jumps over the lazy wall. hello world."
        rows.append({"id": str(i), "question": "who jumps?", "context": context,
                     "answers": {"text": [name], "answer_start": [context.index(name)]}})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_qa_trains_evaluates_and_predicts(tiny_config, tmp_path):
    from tunesmith.inference.predict import predict_file

    model = save_tiny_bert(tmp_path / "bert")
    data = qa_rows(tmp_path / "qa.jsonl", 24)
    config = tiny_config(model={"name_or_path": str(model)}, data={"train": [str(data)], "eval_ratio": 0.25,
                                                                   "cutoff_len": 64},
                         method={"name": "full"}, task={"name": "qa"},
                         train={"max_steps": 24, "batch_size": 6, "learning_rate": 5e-3},
                         eval={"steps": 24})
    result = train(config)
    assert result.eval_after["eval_loss"] < result.eval_before["eval_loss"]
    assert result.eval_after["eval_f1"] > result.eval_before["eval_f1"]
    assert 0 <= result.eval_after["eval_exact_match"] <= 100
    saved = json.loads((result.run_dir / "qa_eval_predictions.json").read_text())
    assert len(saved) == 6 and {"prediction", "answers", "origin"} <= set(saved[0])
    out = predict_file(str(result.run_dir), str(data), str(tmp_path / "pred.jsonl"))
    rows = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    written = {r["id"]: r for r in map(json.loads, data.read_text().splitlines())}
    assert len(rows) == 24 and [r["id"] for r in rows] == list(written)
    assert all(r["answer"] in written[r["id"]]["context"] for r in rows)  # a span of its own context ("": none)
    assert any(r["answer"] for r in rows), "every answer is empty"
    assert all(r["references"] == written[r["id"]]["answers"]["text"] for r in rows)
    assert set(out.metrics) == {"exact_match", "f1"}
