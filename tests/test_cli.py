"""The CLI: one-line errors with exit code 2, Ctrl-C leaves a resumable run, inference commands.

Most commands run in this process (`in_process`, the same `run()` the `tunesmith` script calls):
a subprocess pays the torch + transformers import every time. A real process is kept where the
process itself is under test: exit code and stderr of the script, --debug's traceback, SIGINT."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from inproc import exit_code

ROOT = Path(__file__).resolve().parents[1]


def tunesmith(*args, timeout=300, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "tunesmith.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=kwargs.get("cwd", ROOT))


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    """Relative paths in these commands resolve from the checkout, as for the script run there."""
    monkeypatch.chdir(ROOT)


def in_process(capsys, *args) -> subprocess.CompletedProcess:
    """`tunesmith ARGS` through tunesmith.cli.main.run in this process, as a CompletedProcess."""
    capsys.readouterr()
    code = exit_code(*args)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["tunesmith", *map(str, args)], code, out, err)


def _config(tmp_path, tiny_model_dir, chat_file, **train):
    data = {
        "model": {"name_or_path": str(tiny_model_dir)},
        "data": {"train": [str(chat_file)], "eval_ratio": 0.25, "template": "chatml"},
        "method": {"name": "lora", "r": 4, "dropout": 0.0},
        "train": {"max_steps": 4, "batch_size": 4, "learning_rate": 5e-3, "precision": "fp32",
                  "save_steps": 2, "threads": 1, **train},  # one thread: fastest for a tiny model
        "output": {"dir": str(tmp_path / "run")},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _assert_user_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    text = result.stdout + result.stderr
    assert "Traceback" not in text
    # exactly one error line (third-party import chatter, e.g. bitsandbytes' notice, is not ours)
    assert len([line for line in text.splitlines() if line.startswith("error:")]) == 1, text
    for fragment in fragments:
        assert fragment in text, text


def test_negative_learning_rate_is_one_line():
    result = tunesmith("train", "examples/quickstart.yaml", "train.learning_rate=-1")
    _assert_user_error(result, "train.learning_rate", "must be a number > 0")


def test_debug_shows_traceback():
    result = tunesmith("--debug", "train", "examples/quickstart.yaml", "train.batch_size=0")
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("data.train=[missing.jsonl]", "data file not found: missing.jsonl"),
        ("model.name_or_path=./no-such-model", "is not a model directory"),
        ("method.name=lorra", "unknown method 'lorra'"),
        ("data.format=alpacca", "unknown data format 'alpacca'"),
        ("train.batch_size=0", "train.batch_size"),
    ],
)
def test_bad_input_errors(tmp_path, tiny_model_dir, chat_file, capsys, override, fragment):
    cfg = _config(tmp_path, tiny_model_dir, chat_file)
    _assert_user_error(in_process(capsys, "train", cfg, override), fragment)


def test_failed_run_status_says_why(tmp_path, tiny_model_dir, chat_file, capsys):
    cfg = _config(tmp_path, tiny_model_dir, chat_file)
    in_process(capsys, "train", cfg, "data.format=alpacca")
    status = (tmp_path / "run" / "STATUS").read_text()
    assert status.startswith("failed") and "alpacca" in status


def test_empty_dataset_after_filtering(tmp_path, tiny_model_dir, capsys):
    data = tmp_path / "empty.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                             {"role": "assistant", "content": "hello there"}]}) + "\n")
    cfg = _config(tmp_path, tiny_model_dir, data)
    result = in_process(capsys, "train", cfg, "data.cutoff_len=3")  # the answer is cut away: nothing to learn
    _assert_user_error(result, "no rows left")


def test_existing_run_dir_refused_then_overwritten(tmp_path, tiny_model_dir, chat_file, capsys):
    cfg = _config(tmp_path, tiny_model_dir, chat_file, max_steps=1)
    assert in_process(capsys, "train", cfg).returncode == 0
    _assert_user_error(in_process(capsys, "train", cfg), "already exists", "--overwrite")
    assert in_process(capsys, "train", cfg, "--overwrite").returncode == 0


def test_offline_hub_id_names_zoo(tmp_path, tiny_model_dir, chat_file, capsys, monkeypatch):
    from huggingface_hub import constants

    cfg = _config(tmp_path, tiny_model_dir, chat_file)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # read from the environment at import
    result = in_process(capsys, "train", cfg, "model.name_or_path=someone/some-model")
    _assert_user_error(result, "unknown model 'someone/some-model'", "smollm2-135m-instruct")


def test_ctrl_c_leaves_resumable_checkpoint(tmp_path, tiny_model_dir, chat_file, capsys):
    cfg = _config(tmp_path, tiny_model_dir, chat_file, max_steps=400, save_steps=1000)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "tunesmith.cli.main", "train", str(cfg)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and '"loss"' in metrics.read_text()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert (tmp_path / "run" / "STATUS").read_text().startswith("cancelled")
    checkpoints = list((tmp_path / "run" / "checkpoints").glob("checkpoint-*"))
    assert checkpoints, "Ctrl-C must leave a checkpoint"
    stopped_at = int(checkpoints[0].name.split("-")[1])
    assert 0 < stopped_at < 400
    result = in_process(capsys, "train", cfg, "train.max_steps=" + str(stopped_at + 2), "--resume")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "STATUS").read_text().startswith("succeeded")
    events = (tmp_path / "run" / "events.jsonl").read_text()
    assert f"resuming from checkpoint-{stopped_at}" in events


def test_chat_generate_eval_on_a_run(tmp_path, tiny_model_dir, chat_file, capsys):
    cfg = _config(tmp_path, tiny_model_dir, chat_file)
    assert in_process(capsys, "train", cfg).returncode == 0
    run = tmp_path / "run"
    chat = in_process(capsys, "chat", run, "--prompt", "what is 2 plus 2?", "--max-new-tokens", "5")
    assert chat.returncode == 0, chat.stderr  # a random tiny model's reply may be empty
    out = tmp_path / "pred.jsonl"
    gen = in_process(capsys, "generate", run, "--input", chat_file, "--output", out, "--max-new-tokens", "4")
    assert gen.returncode == 0, gen.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12 and rows[0]["reference"] == "0 plus 0 is 0." and "prediction" in rows[0]
    ev = in_process(capsys, "eval", run, "--data", chat_file)
    assert ev.returncode == 0, ev.stderr
    report = json.loads((run / "eval" / "report.json").read_text())
    assert report["rows"] == 12 and report["eval_loss"] > 0
    assert report["eval_perplexity"] == pytest.approx(math.exp(report["eval_loss"]))
