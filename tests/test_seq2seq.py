"""Seq2seq on a tiny random T5: trains, generates during eval, scores ROUGE/BLEU, predicts."""

import json

import pytest

from tiny_tasks import save_tiny_t5
from tunesmith.tasks.seq2seq import rouge_bleu
from tunesmith.training.runner import train


def test_rouge_bleu_by_hand():
    scores = rouge_bleu(["the cat sat"], ["the cat sat down"])
    # unigrams: 3 common, P=1 R=3/4 -> F 6/7 ; bigrams 2 common of 2 and 3 -> F 0.8
    assert scores["rouge1"] == pytest.approx(6 / 7)
    assert scores["rouge2"] == pytest.approx(0.8)
    assert rouge_bleu(["a b c d"], ["a b c d"])["bleu"] == pytest.approx(100.0)
    zh = rouge_bleu(["今天天气好"], ["今天天气很好"])  # by character: 5 common, P=1 R=5/6
    assert zh["rouge1"] == pytest.approx(10 / 11)


def test_t5_trains_and_generates_during_eval(tiny_config, tmp_path):
    from tunesmith.inference.predict import predict_file

    model = save_tiny_t5(tmp_path / "t5")
    rows = [{"dialogue": f"hello world {w} {w} said the fox", "summary": f"{w}"} for w in ["quick", "brown", "lazy", "dog"] * 4]
    data = tmp_path / "sum.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tiny_config(model={"name_or_path": str(model)}, data={"train": [str(data)], "eval_ratio": 0.25},
                         method={"name": "full"},
                         task={"name": "seq2seq", "source_column": "dialogue", "target_column": "summary",
                               "max_new_tokens": 8},
                         train={"max_steps": 20, "batch_size": 4, "learning_rate": 5e-3},
                         eval={"steps": 20})
    result = train(config)
    assert result.eval_after["eval_loss"] < result.eval_before["eval_loss"]
    for key in ("eval_rouge1", "eval_rouge2", "eval_rougeL"):
        assert 0.0 <= result.eval_after[key] <= 1.0
    assert 0.0 <= result.eval_after["eval_bleu"] <= 100.0
    out = predict_file(str(result.run_dir), str(data), str(tmp_path / "pred.jsonl"))
    preds = [json.loads(l) for l in (tmp_path / "pred.jsonl").read_text().splitlines()]
    assert len(preds) == 16 and "prediction" in preds[0] and preds[0]["reference"] == "quick"
    assert set(out.metrics) == {"rouge1", "rouge2", "rougeL", "bleu", "bleu_brevity_penalty"}
