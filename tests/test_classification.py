"""Sequence classification on tiny BERT and llama: learns, saves its label map, predicts, reports bad rows."""

import json

import pytest
import yaml

from tiny_tasks import save_tiny_bert, sentiment_rows, write_tsv
from tunesmith.cli.main import run as cli
from tunesmith.errors import DataError
from tunesmith.training.runner import train


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def sentiment(tmp_path):
    train_file = write_tsv(tmp_path / "train.tsv", ["sentence", "label"], sentiment_rows(48))
    eval_file = write_tsv(tmp_path / "eval.tsv", ["sentence", "label"], sentiment_rows(12, start=100))
    return train_file, eval_file


def _config(tiny_config, model_dir, train_file, eval_file, method=None, **task):
    return tiny_config(
        model={"name_or_path": str(model_dir)},
        data={"train": [str(train_file)], "eval": [str(eval_file)], "cutoff_len": 32},
        method=method or {"name": "full"},
        task={"name": "classification", "text_column": "sentence", **task},
        train={"max_steps": 18, "batch_size": 8, "learning_rate": 5e-3, "save_steps": 100},
                         eval={"steps": 18},
    )


def test_encoder_learns_and_predict_uses_saved_label_map(tiny_config, tiny_bert_dir, sentiment, tmp_path, capsys):
    config = _config(tiny_config, tiny_bert_dir, *sentiment)
    result = train(config)
    assert result.eval_after["eval_accuracy"] == 1.0
    assert result.eval_after["eval_loss"] < result.eval_before["eval_loss"]
    assert {"eval_macro_f1", "eval_micro_f1", "eval_macro_precision", "eval_micro_recall"} <= set(result.eval_after)
    run = result.run_dir
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["task"]["labels"] == ["negative", "positive"]
    assert (run / "plots" / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((run / "classification_report.json").read_text())
    assert report["per_class"]["positive"]["support"] == 6
    # predict through the CLI on rows without labels, then with labels (scores)
    unlabeled = write_tsv(tmp_path / "new.tsv", ["sentence"], [("quick brown fox",), ("lazy dog who",)])
    out = tmp_path / "pred.jsonl"
    cli(["predict", str(run), "--input", str(unlabeled), "--output", str(out)])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["label"] for r in rows] == ["positive", "negative"]
    assert rows[0]["origin"].endswith("new.tsv:2")
    assert sum(rows[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    from tunesmith.inference.predict import predict_file

    scored = predict_file(str(run), str(sentiment[1]), str(tmp_path / "eval_pred.jsonl"))
    assert scored.metrics["accuracy"] == 1.0 and scored.metrics_path.is_file()


def test_decoder_llm_with_lora_class_weights_and_smoothing(tiny_config, tiny_model_dir, sentiment):
    config = _config(tiny_config, tiny_model_dir, *sentiment, method={"name": "lora", "r": 4, "alpha": 8},
                     class_weights="balanced", label_smoothing=0.1)
    result = train(config)
    assert result.eval_after["eval_loss"] < result.eval_before["eval_loss"]
    assert result.eval_after["eval_accuracy"] >= 0.9
    from tunesmith.inference.load import load_for_inference

    loaded = load_for_inference(str(result.run_dir))
    assert loaded.model.config.pad_token_id == loaded.tokenizer.pad_token_id
    assert loaded.model.config.id2label == {0: "negative", 1: "positive"}


def test_weighted_smoothed_loss_matches_torch():
    import torch
    import torch.nn.functional as F

    from tunesmith.tasks.classification import WeightedLoss

    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    loss = WeightedLoss([3.0, 1.0], 0.2)({"logits": logits}, labels, num_items_in_batch=3)
    per_row = F.cross_entropy(logits, labels, weight=torch.tensor([3.0, 1.0]), label_smoothing=0.2, reduction="none")
    assert loss.item() == pytest.approx(per_row.sum().item() / 3)


def test_labels_by_integer_id_and_pairs(tiny_config, tiny_bert_dir, tmp_path):
    rows = [(s, f"{s} indeed", 1 if lab == "positive" else 0) for s, lab in sentiment_rows(16)]
    f = write_tsv(tmp_path / "pairs.tsv", ["premise", "hypothesis", "label"], rows)
    config = _config(tiny_config, tiny_bert_dir, f, f, labels=["neg", "pos"], text_column="premise",
                     text_pair_column="hypothesis")
    config.train.max_steps = 2
    result = train(config)
    report = json.loads((result.run_dir / "data_report.json").read_text())
    assert report["train"]["rows"] == 16 and report["train"]["skipped_rows"] == 0


def test_missing_label_and_unseen_eval_label_are_reported_by_line(tiny_config, tiny_bert_dir, tmp_path):
    rows = [(s, lab) for s, lab in sentiment_rows(10)]
    rows[3] = (rows[3][0], "")
    train_file = write_tsv(tmp_path / "train.tsv", ["sentence", "label"], rows)
    eval_file = write_tsv(tmp_path / "eval.tsv", ["sentence", "label"], [("quick fox", "positive"),
                                                                          ("odd one", "neutral")])
    config = _config(tiny_config, tiny_bert_dir, train_file, eval_file)
    with pytest.raises(DataError, match=r"train.tsv:5: column 'label' is empty.*on_bad_row=skip"):
        train(config)
    config = _config(tiny_config, tiny_bert_dir, train_file, eval_file)
    config.data.on_bad_row = "skip"
    config.train.max_steps = 2
    config.output.overwrite = True
    result = train(config)
    report = json.loads((result.run_dir / "data_report.json").read_text())
    assert report["train"]["skipped_rows"] == 1 and report["train"]["rows"] == 9
    assert report["eval"]["skipped_rows"] == 1
    assert "eval.tsv:3: label 'neutral' is not one of the training labels" in report["eval"]["skipped"][0]


def test_wrong_text_column_names_the_config_key(tiny_config, tiny_bert_dir, sentiment):
    config = _config(tiny_config, tiny_bert_dir, *sentiment)
    config.task.text_column = "text"
    with pytest.raises(DataError, match=r"train.tsv:2: column 'text' is missing \(row has: sentence, label\); "
                                        r"set task.text_column"):
        train(config)


def test_label_words_task_scores_each_label_with_a_chat_llm(tiny_config, tiny_model_dir, sentiment, tmp_path):
    from tunesmith.inference.predict import predict_file

    config = _config(tiny_config, tiny_model_dir, *sentiment)
    config.task = {"name": "label_words", "text_column": "sentence", "prompt": "{text}"}
    config.data.template = "chatml"
    config.data.cutoff_len = 128
    config.train.max_steps = config.eval.steps = 30
    config.train.learning_rate = 2e-2
    config.train.scheduler = "constant"
    result = train(config)
    assert result.eval_after["eval_loss"] < result.eval_before["eval_loss"]
    assert result.eval_after["eval_accuracy"] >= result.eval_before["eval_accuracy"]
    assert result.eval_after["eval_accuracy"] >= 0.9
    out = predict_file(str(result.run_dir), str(sentiment[1]), str(tmp_path / "p.jsonl"))
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert {r["label"] for r in rows} <= {"negative", "positive"}
    assert sum(rows[0]["probabilities"].values()) == pytest.approx(1.0)
    assert out.metrics["accuracy"] == pytest.approx(result.eval_after["eval_accuracy"])


def test_freeze_tuning_still_trains_the_new_head(tiny_config, tiny_bert_dir, sentiment):
    from tunesmith.tasks import TASKS
    from tunesmith.training import runner

    seen = {}
    original = TASKS.get("classification").make_trainer

    def spy(parts):
        original(parts)
        seen.update({n: p.requires_grad for n, p in parts.model.named_parameters()})
        raise KeyboardInterrupt  # inspect only

    config = _config(tiny_config, tiny_bert_dir, *sentiment, method={"name": "freeze", "trainable_layers": 1})
    object.__setattr__(TASKS.get("classification"), "make_trainer", spy)
    try:
        with pytest.raises(KeyboardInterrupt):
            runner.train(config)
    finally:
        object.__setattr__(TASKS.get("classification"), "make_trainer", original)
    assert seen["classifier.weight"] and seen["classifier.bias"]
    assert not seen["bert.embeddings.word_embeddings.weight"]


def test_an_empty_text_is_reported_as_empty_not_as_a_wrong_column(tiny_config, tiny_bert_dir, tmp_path):
    from tunesmith.data.load import load_records
    from tunesmith.models import load_tokenizer
    from tunesmith.tasks import TASKS

    rows = sentiment_rows(6)
    rows[2] = ("", "positive")
    train_file = write_tsv(tmp_path / "train.tsv", ["sentence", "label"], rows)
    config = _config(tiny_config, tiny_bert_dir, train_file, train_file)
    config.data.on_bad_row = "skip"
    records, _ = load_records([str(train_file)], "rows")
    _, report = TASKS.get("classification").build_features(records, load_tokenizer(tiny_bert_dir), config)
    assert report.rows == 5 and len(report.skipped) == 1
    assert "train.tsv:4: column 'sentence' is empty (empty text)" in report.skipped[0]
    assert "set task." not in report.skipped[0]


@pytest.mark.slow  # torch.onnx's export takes 10 s and more, as in test_exporters_contract.py
def test_a_decoder_classifier_exports_to_onnx_with_its_class_logits(tiny_config, tiny_model_dir, sentiment):
    import onnxruntime

    from tunesmith.export.pipeline import run_export

    config = _config(tiny_config, tiny_model_dir, *sentiment, method={"name": "lora", "r": 4, "alpha": 8})
    config.train.max_steps = 4
    run = train(config).run_dir
    run_export(str(run), "onnx", new_tokens=6)
    folder = run / "exports" / "onnx"
    report = json.loads((folder / "export_report.json").read_text())
    assert report["parity"]["max_abs_logit_diff"] < 1e-4
    outputs = onnxruntime.InferenceSession(str(folder / "model.onnx")).get_outputs()
    assert [(o.name, o.shape) for o in outputs] == [("logits", ["batch", 2])]
