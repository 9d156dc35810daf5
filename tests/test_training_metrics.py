"""Registered metrics at eval steps: logged, plotted, and driving early stopping / best checkpoint."""

import json

import pytest

from tunesmith.errors import ConfigError
from tunesmith.training.runner import train


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run fastest on one thread, and far faster than many on a shared, loaded CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)



def _rows(run_dir, name):
    return [json.loads(line) for line in (run_dir / name).read_text().splitlines()]


def _config(tiny_config, **eval_section):
    return tiny_config(train={"max_steps": 8, "save_steps": 2}, eval={"steps": 2, "metric_rows": 3,
                                                                         "max_new_tokens": 4, **eval_section})


def test_metric_at_eval_steps_drives_early_stopping(tiny_config, tmp_path):
    # The regex never matches the random model's replies, so regex_match stays 0: no improvement.
    stalled = _config(tiny_config, metrics=["rouge", "regex"], metric_options={"regex": {"pattern": "^zzz$"}},
                      best_metric="regex_match", early_stopping_patience=2)
    result = train(stalled)
    metrics = _rows(result.run_dir, "metrics.jsonl")
    scored = [r for r in metrics if "eval_regex_match" in r]
    # before training and 3 evals; the final evaluation is step 6's (the same weights), not run again
    assert [r["step"] for r in scored] == [0, 2, 4, 6]
    assert all(r["eval_regex_match"] == 0.0 and "eval_rouge1" in r for r in scored)
    assert result.train_metrics and _rows(result.run_dir, "events.jsonl")[-1]["event"] == "succeeded"
    assert "eval_rougeL" in result.eval_after and (result.run_dir / "plots" / "metrics.png").is_file()
    # The same run stopping on eval_loss, which keeps falling, trains all 8 steps.
    falling = _config(tiny_config, metrics=["rouge"], early_stopping_patience=2)
    falling.output.dir = str(tmp_path / "b")
    steps = [r["step"] for r in _rows(train(falling).run_dir, "metrics.jsonl") if "loss" in r]
    assert max(steps) == 8


def test_direction_of_the_metric_is_respected(tiny_config):
    # eval_loss falls every evaluation; told that greater is better, every eval is "worse" and it stops.
    config = _config(tiny_config, best_metric="eval_loss", greater_is_better=True, early_stopping_patience=1)
    steps = [r["step"] for r in _rows(train(config).run_dir, "metrics.jsonl") if "loss" in r]
    assert max(steps) == 4


def test_best_checkpoint_is_chosen_by_the_metric(tiny_config):
    config = _config(tiny_config, metrics=["bleu"], best_metric="bleu", load_best_at_end=True)
    run_dir = train(config).run_dir
    best = [e for e in _rows(run_dir, "events.jsonl") if e["event"] == "best_checkpoint"]
    assert best and best[0]["metric"] == "eval_bleu" and "checkpoint-" in best[0]["checkpoint"]
    scored = [r for r in _rows(run_dir, "metrics.jsonl") if "eval_bleu" in r and r["step"] > 0]
    # each evaluation once: the best checkpoint loaded back at the end is not evaluated again
    assert len({r["step"] for r in scored}) == len(scored)
    bleu = [r["eval_bleu"] for r in scored]
    assert best[0]["value"] == pytest.approx(max(bleu))
    step = next(r["step"] for r in scored if r["eval_bleu"] == best[0]["value"])
    assert best[0]["step"] == step and f"at step {step} (checkpoint-{step})" in best[0]["message"]


def test_unknown_best_metric_fails_before_training(tiny_config):
    with pytest.raises(ConfigError, match="not a score of eval.metrics"):
        train(_config(tiny_config, metrics=["rouge"], best_metric="bleu"))
