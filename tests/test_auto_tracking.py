"""`auto` training values and experiment trackers (TensorBoard, MLflow), written and read back."""

import json

import pytest
import yaml

from tunesmith.training.auto import auto_batch_size, auto_epochs, auto_learning_rate
from tunesmith.training.runner import train


def _metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("rows, accum, batch", [(12, 1, 1), (2_000, 1, 4), (2_000, 2, 2), (1_000_000, 1, 16)])
def test_auto_batch_is_about_two_per_mille_of_rows_and_capped(rows, accum, batch):
    assert auto_batch_size(rows, accum) == batch


@pytest.mark.parametrize("rows, epochs", [(9, 10), (200, 5), (500, 3), (10_000, 3), (20_000, 1), (10**6, 1)])
def test_auto_epochs_aim_for_one_to_thirty_thousand_rows_seen(rows, epochs):
    assert auto_epochs(rows) == epochs


def test_auto_learning_rate_depends_on_method_and_batch():
    from tunesmith.methods import METHODS

    assert auto_learning_rate(METHODS.get("lora"), 8) == 2e-4
    assert auto_learning_rate(METHODS.get("lora"), 1) == 1e-4  # small batch: half (sqrt rule, floored)
    assert auto_learning_rate(METHODS.get("full"), 32) == 2e-5  # full weights: 10x lower, doubled
    assert auto_learning_rate(METHODS.get("freeze"), 8) == 5e-5


def test_auto_values_are_resolved_from_the_data_and_recorded(tiny_config):
    config = tiny_config(train={"epochs": "auto", "batch_size": "auto", "learning_rate": "auto",
                                "max_steps": 3, "threads": 1})
    result = train(config)
    written = yaml.safe_load((result.run_dir / "config.yaml").read_text())["train"]
    # 12 rows, 25% held out: 9 train rows -> batch 1, 10 epochs, LoRA rate 2e-4 * 0.5
    assert (written["batch_size"], written["epochs"], written["learning_rate"]) == (1, 10.0, 1e-4)
    events = [json.loads(line) for line in (result.run_dir / "events.jsonl").read_text().splitlines()]
    auto = next(e for e in events if e["event"] == "auto")
    assert "9 rows" in auto["batch_size"] and "lora" in auto["learning_rate"]
    assert max(r["learning_rate"] for r in _metrics(result.run_dir) if "learning_rate" in r) <= 1e-4


def test_tensorboard_and_mlflow_runs_are_written_and_read_back(tiny_config, tmp_path, capsys):
    from tunesmith.training.tracking import read_mlflow_run, read_tensorboard_scalars

    config = tiny_config(train={"max_steps": 4, "threads": 1, "report_to": ["tensorboard", "mlflow"]},
                         eval={"steps": 2})
    result = train(config)
    logged = _metrics(result.run_dir)
    losses = [(r["step"], r["loss"]) for r in logged if "loss" in r]
    evals = [(r["step"], r["eval_loss"]) for r in logged if "eval_loss" in r]

    scalars = read_tensorboard_scalars(result.run_dir)
    assert [s for s, _ in scalars["train/loss"]] == [s for s, _ in losses]
    assert [v for _, v in scalars["train/loss"]] == pytest.approx([v for _, v in losses], rel=1e-6)
    assert [v for _, v in scalars["eval/loss"]] == pytest.approx([v for _, v in evals], rel=1e-6)

    mlrun = read_mlflow_run(result.run_dir)
    assert (tmp_path / "mlruns").is_dir()  # the default: a local file store beside the run
    assert mlrun["status"] == "FINISHED" and mlrun["experiment"] == tmp_path.name
    assert mlrun["params"]["train.learning_rate"] == "0.005" and mlrun["params"]["method.name"] == "lora"
    assert mlrun["history"]["loss"] == [pytest.approx(x, rel=1e-6) for x in losses]
    assert mlrun["metrics"]["eval_loss"] == pytest.approx(result.eval_after["eval_loss"], rel=1e-6)

    from tunesmith.cli.main import run

    capsys.readouterr()
    run(["runs", "show", str(result.run_dir)])
    shown = capsys.readouterr().out  # results go to stdout
    assert "tensorboard" in shown and "mlflow.json" in shown and "succeeded" in shown
