"""The task example configs validate, and each smoke-runs on a tiny model with its real data layout."""

from pathlib import Path

import pytest

from tiny_tasks import save_tiny_bert
from tunesmith.config import load_config
from tunesmith.training.runner import train

EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("bert"))


def _smoke(name: str, model: Path, tmp_path: Path, data: dict, extra: list[str] = ()):
    overrides = [f"model.name_or_path={model}", f"output.dir={tmp_path / name}", "train.max_steps=2",
                 "train.epochs=1", "train.batch_size=2", "eval.batch_size=8", "train.threads=1", *extra]
    overrides += [f"data.{k}={v}" for k, v in data.items()]
    config = load_config(EXAMPLES / f"{name}.yaml", overrides)
    return train(config)


@pytest.mark.parametrize("name", ["sst2-minilm", "dpo-smollm2", "squad-minilm", "agnews-minilm"])
def test_example_config_validates(name):
    config = load_config(EXAMPLES / f"{name}.yaml")
    assert config.output.dir == f"runs/{name}"
    assert all(p.startswith("../shared/datasets/") for p in config.data.train + config.data.eval)


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


def test_dpo_example_smoke(tiny_model_dir, tmp_path):
    from conftest import shared

    pairs = shared("llamafactory_dpo_demo", "dpo_en_demo.json")
    result = _smoke("dpo-smollm2", tiny_model_dir, tmp_path,
                    {"train": pairs, "max_rows": 24, "eval_ratio": 0.25, "cutoff_len": 256},
                    ["train.grad_accum=1"])
    assert result.status == "succeeded" and "eval_rewards/accuracies" in result.eval_after


def test_squad_example_smoke(tiny_bert, tmp_path):
    from conftest import shared

    squad = shared("squad_expmrc_subset", "expmrc-squad-dev.json")
    result = _smoke("squad-minilm", tiny_bert, tmp_path, {"train": squad, "max_rows": 20, "cutoff_len": 96})
    assert result.status == "succeeded" and {"eval_exact_match", "eval_f1"} <= set(result.eval_after)


def test_agnews_example_smoke_headerless_csv_and_stratified_split(tiny_bert, tmp_path):
    import json

    from conftest import shared

    news = shared("ag_news", "test.csv")
    result = _smoke("agnews-minilm", tiny_bert, tmp_path, {"train": news, "max_rows": 40, "cutoff_len": 48})
    assert result.status == "succeeded" and "eval_macro_f1" in result.eval_after
    report = json.loads((result.run_dir / "data_report.json").read_text())
    assert report["train"]["records"] == 32 and report["eval"]["records"] == 8  # 20% of 40, per class


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
