"""One contract over every registered task: adding a task to TASKS adds it here.

Each task trains a tiny model (tests/tiny_tasks.py TINY_TASKS: a model and four rows per task)
for a few steps on one fixed batch. For every task: the loss falls; `predict` answers every row
(a task without a predict hook says so clearly, and its reloaded model gives the trained logits);
and the saved run, reloaded, predicts exactly what the trained model in memory predicts.
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import TrainerCallback

from tiny_tasks import TINY_TASKS
from tunesmith.config import validate_config
from tunesmith.errors import ConfigError
from tunesmith.tasks import TASKS
from tunesmith.training.runner import train

ROWS = 4
STEPS = 4


class TrainedModel(TrainerCallback):
    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.model = model


@pytest.fixture(scope="module")
def no_plots():
    """Loss plots are tested elsewhere; drawing them is a quarter of a tiny run's time."""
    from tunesmith.training import runner

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "plot_loss", lambda *args: None)
        patch.setattr(runner, "plot_metrics", lambda *args: None)
        yield


@pytest.fixture(scope="module", params=TASKS.names())
def trained(request, tmp_path_factory, no_plots):
    name = request.param
    tiny = TINY_TASKS.get(name)
    if tiny is None:
        pytest.fail(f"task {name!r} has no tiny example: add one to TINY_TASKS in tests/tiny_tasks.py")
    root = tmp_path_factory.mktemp(name)
    data = root / "train.jsonl"
    data.write_text("".join(json.dumps(tiny.row(i)) + "\n" for i in range(ROWS)))
    config = validate_config({
        "model": {"name_or_path": str(tiny.make_model(root / "model"))},
        "data": {"train": [str(data)], "template": "chatml", "cutoff_len": 64},
        "method": {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.0},
        "task": tiny.task,
        "train": {"max_steps": STEPS, "batch_size": ROWS, "learning_rate": 1e-2, "logging_steps": 1,
                  "save_steps": 100, "precision": "fp32", "scheduler": "constant", "max_grad_norm": 0,
                  "threads": 1},
        "eval": {"before_training": False},
        "output": {"dir": str(root / "run")},
    })
    model = TrainedModel()
    result = train(config, callbacks=(model,))
    assert result.status == "succeeded"
    return TASKS.get(name), result.run_dir, data, model.model.eval()


def test_a_few_steps_lower_the_loss(trained):
    _, run_dir, _, _ = trained
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == STEPS
    assert losses[-1] < losses[0], losses


def _rounded(value):
    """Predictions compared exactly, scores to 1e-4 (float rounding between two forward passes)."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _in_memory_predictions(task, model, loaded, data) -> list[dict]:
    """What the trained model, before it was saved, predicts for the rows (as `predict` does)."""
    from dataclasses import replace

    from tunesmith.data.load import load_records
    from tunesmith.inference.batch import answer_file, prediction_rows

    if task.predict is None:
        examples, replies = answer_file(replace(loaded, model=model), str(data), 8, ROWS)
        return prediction_rows(examples, replies)
    records, _ = load_records([str(data)], task.data_format or "auto")
    rows, _ = task.predict(model, loaded.tokenizer, records, loaded.config, ROWS)
    return rows


def test_predict_answers_every_row_and_the_reloaded_run_predicts_the_same(trained, tmp_path):
    from tunesmith.inference.load import load_for_inference
    from tunesmith.inference.predict import predict_file

    task, run_dir, data, model = trained
    out = tmp_path / "predictions.jsonl"
    if task.predict is None and task.name != "sft":
        with pytest.raises(ConfigError, match=f"task '{task.name}' has no predict"):
            predict_file(str(run_dir), str(data), str(out))
        loaded = load_for_inference(str(run_dir)).model
        ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
        with torch.no_grad():
            torch.testing.assert_close(loaded(ids).logits, model(ids).logits, atol=1e-5, rtol=0)
        return
    result = predict_file(str(run_dir), str(data), str(out), batch_size=ROWS, max_new_tokens=8)
    saved = [json.loads(line) for line in out.read_text().splitlines()]
    assert result.rows == len(saved) == ROWS
    expected = _in_memory_predictions(task, model, load_for_inference(str(run_dir)), data)
    assert _rounded(json.loads(json.dumps(expected))) == _rounded(saved)
