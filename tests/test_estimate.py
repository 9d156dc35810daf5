"""`tunesmith estimate` measures a short warm-up and extrapolates steps, time and memory."""

import json

from typer.testing import CliRunner


def test_estimate_counts_tokens_and_steps_and_measures_speed(tiny_config):
    from tunesmith.training.estimate import estimate

    config = tiny_config(train={"max_steps": -1, "epochs": 2, "batch_size": 3})
    result = estimate(config, warmup_steps=3)
    assert result.examples == 9  # 12 rows, 25% held out for eval
    assert result.steps_per_epoch == 3 and result.total_steps == 6
    assert result.real_tokens > result.trainable_tokens > 0
    assert result.real_tokens_per_second > 0
    assert result.train_seconds > 0 and result.total_seconds >= result.train_seconds
    assert result.eval_seconds > 0  # eval before and after training
    assert result.peak_memory_mb > 10
    assert not (config.output.dir and __import__("pathlib").Path(config.output.dir).exists())


def test_estimate_cli_prints_json(tiny_config, tmp_path):
    import yaml

    from tunesmith.cli.main import app

    config = tiny_config(train={"max_steps": 10})
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    out = CliRunner().invoke(app, ["estimate", str(path), "--steps", "3", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout[out.stdout.index("{"):])
    assert data["total_steps"] == 10 and data["batching"] == "batch"
