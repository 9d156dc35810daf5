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


def test_estimate_is_within_a_quarter_of_the_real_run(tiny_config):
    """The warm-up's extrapolation against the run itself: same config, same process, timed whole.
    Both in CPU seconds of this process, so other work on a shared machine does not blur them."""
    import time

    from tunesmith.training.estimate import estimate
    from tunesmith.training.runner import train

    config = tiny_config(train={"max_steps": -1, "epochs": 5, "batch_size": 1, "save_steps": 10},
                         eval={"steps": 15})
    predicted = estimate(config, warmup_steps=8, timer=time.process_time)
    started = time.process_time()
    run_dir = train(config).run_dir
    actual = time.process_time() - started
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert predicted.total_steps == max(r["step"] for r in logged) == 45
    assert predicted.evaluations == len([r for r in logged if "eval_loss" in r]) == 4  # before, 15, 30, 45
    assert predicted.checkpoints == len([e for e in events if e["event"] == "checkpoint"]) == 5  # 10 ... 40, 45
    assert abs(predicted.total_seconds - actual) <= 0.25 * actual, (predicted.as_dict(), actual)
