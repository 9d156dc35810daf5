"""The task example configs validate, and each smoke-runs on a tiny model with its real data layout."""

import os
from pathlib import Path

import pytest

from tiny_tasks import save_tiny_bert
from tunesmith.config import load_config

EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("bert"))


def _train_and_predict(name: str, model: Path, tmp_path: Path, data: dict, predict_rows: list[dict],
                       extra: list[str] = ()) -> tuple[dict, list[dict], dict]:
    """The example through the real CLI on a tiny model: `train`, then `predict` on a few rows in
    the example's own data layout. Returns results.json, the predictions and their scores."""
    import json

    from tunesmith.cli.main import run as cli

    run = tmp_path / name
    overrides = [f"model.name_or_path={model}", f"output.dir={run}", "train.max_steps=2",
                 "train.epochs=1", "train.batch_size=2", "eval.batch_size=8", "train.threads=1", *extra]
    cli(["train", str(EXAMPLES / f"{name}.yaml"), *overrides, *[f"data.{k}={v}" for k, v in data.items()]])
    rows_in, out = tmp_path / "input.json", tmp_path / "predictions.jsonl"
    rows_in.write_text(json.dumps(predict_rows))
    cli(["predict", str(run), "--input", str(rows_in), "--output", str(out), "--max-new-tokens", "8"])
    metrics = out.with_suffix(".metrics.json")
    return (json.loads((run / "results.json").read_text()), [json.loads(line) for line in out.read_text().splitlines()],
            json.loads(metrics.read_text()) if metrics.exists() else {})


def _first(path: Path, n: int) -> list[dict]:
    import json

    return json.loads(path.read_text(encoding="utf-8"))[:n]


@pytest.mark.parametrize("name", ["sst2-minilm", "dpo-smollm2", "squad-minilm", "agnews-minilm", "samsum-smollm2"])
def test_example_config_validates(name):
    config = load_config(EXAMPLES / f"{name}.yaml")
    assert config.output.dir == f"runs/{name}"
    shared = os.path.normpath(EXAMPLES.parent / ".." / "shared" / "datasets")  # ../shared beside the checkout
    assert all(p.startswith(shared + os.sep) for p in config.data.train + config.data.eval)


def test_sst2_example_trains_and_predicts_through_the_cli(tiny_bert, tmp_path, capsys):
    import json

    from conftest import shared
    from tunesmith.cli.main import run as cli

    folder = shared("sst2")
    run = tmp_path / "sst2"
    cli(["train", str(EXAMPLES / "sst2-minilm.yaml"), f"model.name_or_path={tiny_bert}", f"output.dir={run}",
         f"data.train={folder / 'alps_train.tsv'}", "data.eval=[]", "data.eval_ratio=0.25", "data.max_rows=16",
         "train.max_steps=2", "train.batch_size=4", "eval.batch_size=8"])
    assert "accuracy" in capsys.readouterr().err
    out = tmp_path / "pred.jsonl"
    cli(["predict", str(run), "--input", str(folder / "alps_test.tsv"), "--output", str(out)])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 872 and {r["label"] for r in rows} <= {"negative", "positive"}
    assert json.loads(out.with_suffix(".metrics.json").read_text())["rows"] == 872


def test_dpo_example_through_the_cli(tiny_model_dir, tmp_path):
    from conftest import shared

    pairs = shared("llamafactory_dpo_demo", "dpo_en_demo.json")
    results, rows, metrics = _train_and_predict(
        "dpo-smollm2", tiny_model_dir, tmp_path, {"train": pairs, "max_rows": 24, "eval_ratio": 0.25,
                                                  "cutoff_len": 256}, _first(pairs, 3), ["train.grad_accum=1"])
    assert "eval_rewards/accuracies" in results["eval_after"]
    assert 1 <= len(rows) <= 3 and all(r["prefers_chosen"] == (r["chosen_logp"] > r["rejected_logp"]) for r in rows)
    preferred = sum(r["chosen_reward"] > r["rejected_reward"] for r in rows)
    assert metrics["reward_accuracy"] * len(rows) == pytest.approx(preferred)


def test_squad_example_through_the_cli(tiny_bert, tmp_path):
    from conftest import shared

    squad = shared("squad_expmrc_subset", "expmrc-squad-dev.json")
    results, rows, metrics = _train_and_predict(
        "squad-minilm", tiny_bert, tmp_path, {"train": squad, "max_rows": 20, "cutoff_len": 96},
        _squad_rows(squad, 4))
    assert {"eval_exact_match", "eval_f1"} <= set(results["eval_after"])
    assert len(rows) == 4 and all(isinstance(r["answer"], str) for r in rows)
    from tunesmith.metrics.squad import squad_scores

    expected = squad_scores([r["answer"] for r in rows], [q["answers"]["text"] for q in _squad_rows(squad, 4)])
    assert metrics["f1"] == pytest.approx(expected["f1"])
    assert metrics["exact_match"] == pytest.approx(expected["exact_match"])


def _squad_rows(path: Path, n: int) -> list[dict]:
    """The first n questions of a SQuAD file as flat rows (predict takes either layout)."""
    import json

    rows = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = qa["answers"]
                rows.append({"id": qa["id"], "question": qa["question"], "context": paragraph["context"],
                             "answers": {"text": [a["text"] for a in answers],
                                         "answer_start": [a["answer_start"] for a in answers]}})
                if len(rows) == n:
                    return rows
    return rows


def test_agnews_example_headerless_csv_stratified_split_through_the_cli(tiny_bert, tmp_path):
    import json

    from conftest import shared

    news = shared("ag_news", "test.csv")
    results, rows, _ = _train_and_predict(
        "agnews-minilm", tiny_bert, tmp_path, {"train": news, "max_rows": 40, "cutoff_len": 48},
        [{"title": "Stocks fall", "description": "Markets dropped on Monday.", "label": 3}])
    assert "eval_macro_f1" in results["eval_after"]
    report = json.loads((tmp_path / "agnews-minilm" / "data_report.json").read_text())
    assert report["train"]["records"] == 32 and report["eval"]["records"] == 8  # 20% of 40, per class
    assert rows[0]["label"] in {"World", "Sports", "Business", "Sci/Tech"}


def test_samsum_example_reads_raw_rows_and_scores_rouge_through_the_cli(tiny_model_dir, tmp_path):
    from conftest import shared

    samsum = shared("samsum")
    results, rows, metrics = _train_and_predict(
        "samsum-smollm2", tiny_model_dir, tmp_path,
        {"train": samsum / "validation.json", "max_rows": 16, "eval_ratio": 0.25, "cutoff_len": 256},
        _first(samsum / "test.json", 3), ["eval.metric_rows=2", "eval.max_new_tokens=4"])
    assert {"eval_rougeL", "eval_loss"} <= set(results["eval_before"]) & set(results["eval_after"])
    raw = _first(samsum / "test.json", 3)
    assert [r["reference"] for r in rows] == [r["summary"] for r in raw]  # template step applied to new rows
    assert raw[0]["dialogue"] in rows[0]["prompt"]
    from tunesmith.metrics import METRICS

    expected = METRICS.get("rouge").compute([r["prediction"] for r in rows], [r["reference"] for r in rows])
    assert {k: metrics[k] for k in ("rouge1", "rouge2", "rougeL")} == pytest.approx(
        {k: expected[k] for k in ("rouge1", "rouge2", "rougeL")})


def test_stratified_split_keeps_class_shares():
    from tunesmith.data.load import split_eval

    rows = [{"label": "a"}] * 80 + [{"label": "b"}] * 20
    train, held = split_eval([dict(r, i=i) for i, r in enumerate(rows)], 0.1, 0, by="label")
    assert sorted(r["label"] for r in held) == ["a"] * 8 + ["b"] * 2 and len(train) == 90


def test_headerless_csv_rows_keep_their_line_numbers(tmp_path):
    from tunesmith.data.readers import read_rows

    f = tmp_path / "x.csv"
    f.write_text('3,"title one","desc"\n4,"title two","desc"\n')
    rows = list(read_rows(f, columns=["label", "title", "description"]))
    assert rows[0].data == {"label": "3", "title": "title one", "description": "desc"}
    assert rows[1].origin.endswith("x.csv:2")
