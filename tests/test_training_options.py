"""Optimizers, schedules, precision, checkpointing, early stopping and pretraining all train."""

import json
from pathlib import Path

import pytest

from tunesmith.training.runner import train


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    "train_options",
    [
        {"optimizer": "sgd", "learning_rate": 0.5, "scheduler": "constant", "grad_accum": 2},
        {"optimizer": "adafactor", "learning_rate": 1e-2, "scheduler": "linear", "warmup_steps": 2},
        {"precision": "bf16", "gradient_checkpointing": True, "weight_decay": 0.1, "max_grad_norm": 0.5},
    ],
    ids=["sgd-constant-accum", "adafactor-linear-warmup", "bf16-checkpointing-decay-clip"],
)
def test_training_options_lower_eval_loss(tiny_config, train_options):
    result = train(tiny_config(train={"max_steps": 10, **train_options}))
    assert result.eval_after["eval_loss"] < result.eval_before["eval_loss"]


def test_warmup_schedule_is_followed(tiny_config):
    result = train(tiny_config(train={"max_steps": 8, "warmup_steps": 4, "scheduler": "constant",
                                      "learning_rate": 1e-2}))
    lrs = [r["learning_rate"] for r in _rows(result.run_dir) if "learning_rate" in r]
    assert lrs[:5] == pytest.approx([0.0, 2.5e-3, 5e-3, 7.5e-3, 1e-2])
    assert lrs[-1] == pytest.approx(1e-2)


def test_checkpoint_limit_and_eval_steps(tiny_config):
    result = train(tiny_config(train={"max_steps": 8, "save_steps": 2, "save_total_limit": 2},
                               eval={"steps": 2}))
    checkpoints = sorted(p.name for p in (result.run_dir / "checkpoints").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-6", "checkpoint-8"]
    eval_steps = [r["step"] for r in _rows(result.run_dir) if "eval_loss" in r]
    assert {2, 4, 6, 8} <= set(eval_steps)


def test_early_stopping_stops_when_eval_loss_stops_improving(tiny_config):
    # a huge learning rate makes eval loss blow up after the first steps
    result = train(tiny_config(train={"max_steps": 40, "learning_rate": 5.0, "optimizer": "sgd",
                                      "scheduler": "constant", "max_grad_norm": 0},
                               eval={"steps": 1, "early_stopping_patience": 2}))
    steps = [r["step"] for r in _rows(result.run_dir) if "loss" in r]
    assert max(steps) < 40


def test_continued_pretraining_on_text(tiny_config, tmp_path):
    data = tmp_path / "text.jsonl"
    data.write_text("".join(json.dumps({"text": "the quick brown fox jumps over the lazy dog " * 6}) + "\n"
                            for _ in range(8)))
    result = train(tiny_config(task={"name": "pretrain"}, data={"train": [str(data)], "cutoff_len": 16},
                               train={"max_steps": 10}))
    report = json.loads((result.run_dir / "data_report.json").read_text())
    assert report["train"]["rows"] > report["train"]["records"]  # long texts became several blocks
    assert report["train"]["truncated_rows"] == 0
    assert result.eval_after["eval_loss"] < result.eval_before["eval_loss"]


def test_sft_on_pretrain_text_is_a_clear_error(tiny_config, tmp_path):
    from tunesmith.errors import DataError

    data = tmp_path / "text.jsonl"
    data.write_text(json.dumps({"text": "plain text"}) + "\n")
    with pytest.raises(DataError, match=r"text.jsonl:1: task sft needs conversations.*task.name=pretrain"):
        train(tiny_config(data={"train": [str(data)]}))


def test_truncated_rows_are_counted(tiny_config):
    from tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    text = tok.apply_chat_template([{"role": "user", "content": "what is 10 plus 10?"}], tokenize=False,
                                   add_generation_prompt=True)
    prompt_tokens = len(tok(text, add_special_tokens=False)["input_ids"])
    result = train(tiny_config(data={"cutoff_len": prompt_tokens + 2}, train={"max_steps": 1}))
    report = json.loads((result.run_dir / "data_report.json").read_text())
    assert report["train"]["truncated_rows"] == report["train"]["records"] > 0
    assert report["train"]["truncated"][0].endswith(tuple(f".jsonl:{i}" for i in range(1, 13)))


def test_the_last_evaluation_is_not_run_twice(tiny_config):
    # 9 training rows, 3 per step: an evaluation at the end of each epoch (steps 3 and 6)
    result = train(tiny_config(train={"max_steps": -1, "epochs": 2, "batch_size": 3}))
    evals = [r for r in _rows(result.run_dir) if "eval_loss" in r]
    assert [r["step"] for r in evals] == [0, 3, 6]  # before training, then once per epoch
    assert result.eval_after["eval_loss"] == evals[-1]["eval_loss"]
    assert result.eval_after["eval_perplexity"] > 1


def test_best_eval_loss_event_names_its_step_without_a_checkpoint(tiny_config):
    import json as _json

    # eval_loss falls, so "greater is better" makes the first evaluation (step 2, no checkpoint) the best
    result = train(tiny_config(train={"max_steps": 4, "save_steps": 3},
                               eval={"steps": 2, "best_metric": "eval_loss", "greater_is_better": True}))
    events = [_json.loads(line) for line in (result.run_dir / "events.jsonl").read_text().splitlines()]
    best = next(e for e in events if e["event"] == "best_checkpoint")
    evals = {r["step"]: r["eval_loss"] for r in _rows(result.run_dir) if "eval_loss" in r and r["step"]}
    assert sorted(evals) == [2, 4] and evals[2] > evals[4]
    assert best["step"] == 2 and best["checkpoint"] is None
    assert best["message"] == f"best eval_loss {evals[2]:.4f} at step 2"


def test_torch_compile_compiles_every_layer_and_the_run_learns(tiny_config, monkeypatch):
    """aot_eager stands in for inductor (the same graphs, no C++ build: minutes on 2 cores)."""
    from tunesmith.training import runner
    from tunesmith.training.compile import compile_layers

    monkeypatch.setattr(runner, "compile_layers", lambda model: compile_layers(model, backend="aot_eager"))
    monkeypatch.setattr(runner, "compiler_missing", lambda: None)  # aot_eager builds no C++
    config = tiny_config(train={"max_steps": 6, "torch_compile": True})
    result = train(config)
    layers = json.loads((Path(config.model.name_or_path) / "config.json").read_text())["num_hidden_layers"]
    events = [json.loads(line) for line in (result.run_dir / "events.jsonl").read_text().splitlines()]
    compiled = [e["message"] for e in events if "torch.compile" in e.get("message", "")]
    assert compiled and compiled[0].startswith(f"torch.compile: {layers} transformer layers")
    assert result.eval_after["eval_loss"] < result.eval_before["eval_loss"]
