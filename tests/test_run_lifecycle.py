"""The run lifecycle: folder replacement, run identity, one writer, overwrite safety, cancel,
events, and resume bookkeeping."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from tunesmith.errors import RunDirError
from tunesmith.runs.rundir import RunDir
from tunesmith.utils.io import replace_dir

ROOT = Path(__file__).resolve().parents[1]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- replace_dir ---------------------------------------------------------------------------------
def test_replace_dir_swaps_whole_and_keeps_the_old_on_failure(tmp_path):
    target = tmp_path / "out"
    with replace_dir(target) as tmp:
        (tmp / "a.txt").write_text("one")
    assert (target / "a.txt").read_text() == "one"
    with pytest.raises(RuntimeError), replace_dir(target) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("killed half-way")
    assert (target / "a.txt").read_text() == "one"
    with replace_dir(target) as tmp:
        (tmp / "b.txt").write_text("two")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no work folder left behind


def test_stale_work_folders_of_dead_processes_are_removed(tmp_path):
    target = tmp_path / "export"
    dead = tmp_path / f".export.tmp-{_dead_pid()}-abc123"
    live = tmp_path / f".export.tmp-{os.getpid()}-def456"
    other = tmp_path / f".other.tmp-{_dead_pid()}-abc123"
    for folder in (dead, live, other):
        folder.mkdir()
        (folder / "weights.bin").write_bytes(b"x" * 100)
    with replace_dir(target) as tmp:
        (tmp / "model.onnx").write_text("m")
    assert not dead.exists(), "a killed export's temp folder is removed by the next export"
    assert live.exists() and other.exists(), "a live process's and another target's folders stay"


def test_an_interrupted_swap_puts_the_old_folder_back(tmp_path):
    target = tmp_path / "model"
    old = tmp_path / f".model.old-{_dead_pid()}-abc123"  # died between moving target aside and the swap
    old.mkdir()
    (old / "config.json").write_text("{}")
    with pytest.raises(RuntimeError), replace_dir(target):
        raise RuntimeError
    assert (target / "config.json").read_text() == "{}"


# --- identity, lock, status --------------------------------------------------------------------
def _fake_run(path: Path, config: dict | None = None) -> RunDir:
    run = RunDir(path)
    run.start(config or {"output": {"dir": str(path)}})
    return run


def test_a_second_writer_gets_one_line_naming_the_first(tmp_path):
    run = _fake_run(tmp_path / "run")
    with run.lock():
        with pytest.raises(RunDirError, match=rf"pid {os.getpid()} on {os.uname().nodename}"):
            run.lock().acquire()
        assert run.status() == "running"
    assert not (run.path / "LOCK").exists()
    with run.lock() as again:  # released: the next writer gets it
        assert again.stale is None


def test_a_dead_writers_run_reads_interrupted_and_its_lock_is_taken_over(tmp_path):
    run = _fake_run(tmp_path / "run")
    pid = _dead_pid()
    (run.path / "LOCK").write_text(json.dumps({"pid": pid, "host": os.uname().nodename, "since": "x"}))
    assert run.status() == "interrupted"
    with run.lock() as lock:
        assert lock.stale is not None and lock.stale.pid == pid
        assert run.status() == "running"


def test_run_identity_is_kept_and_a_cancel_request_is_consumed(tmp_path):
    from tunesmith.runs.cancel import CancelToken

    run = _fake_run(tmp_path / "run")
    first = run.id
    assert first and len(first) == 32
    token = CancelToken(run.cancel_file)
    assert not token.is_set()
    run.request_cancel()  # what another process does
    assert token.is_set()
    run.start({})  # a resume: same id, the old request does not cancel the new session
    assert run.id == first and not token.is_set()
    run.set_status("succeeded")
    with pytest.raises(RunDirError, match="is succeeded, not running"):
        run.request_cancel()


# --- overwrite ---------------------------------------------------------------------------------
def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_overwrite_never_replaces_a_folder_that_is_not_a_run(tiny_config, tmp_path):
    from tunesmith.training.runner import train

    folder = tmp_path / "my-documents"
    (folder / "notes").mkdir(parents=True)
    (folder / "thesis.txt").write_text("years of work")
    (folder / "notes" / "a.md").write_text("# a")
    before = _tree(folder)
    with pytest.raises(RunDirError, match="not a tunesmith run"):
        train(tiny_config(output={"dir": str(folder), "overwrite": True}))
    assert _tree(folder) == before  # byte-identical, not even a lock file


def test_overwrite_refuses_a_run_that_holds_its_own_data(tiny_config, tmp_path, chat_file):
    from tunesmith.training.runner import train

    run = _fake_run(tmp_path / "run")
    inside = run.path / "chat.jsonl"
    inside.write_bytes(chat_file.read_bytes())
    before = _tree(run.path)
    config = tiny_config(data={"train": [str(inside)]}, output={"dir": str(run.path), "overwrite": True})
    with pytest.raises(RunDirError, match="would delete .*chat.jsonl"):
        train(config)
    assert _tree(run.path) == before


def test_overwrite_replaces_an_old_run_only_after_the_data_is_read(tiny_config, tmp_path):
    from tunesmith.errors import TunesmithError
    from tunesmith.training.runner import train

    run = _fake_run(tmp_path / "run")
    (run.path / "adapter").mkdir()
    (run.path / "adapter" / "adapter_model.safetensors").write_bytes(b"weights")
    before = _tree(run.path)
    missing = str(tmp_path / "missing.jsonl")
    config = tiny_config(data={"train": [missing]}, output={"dir": str(run.path), "overwrite": True})
    with pytest.raises(TunesmithError, match="missing.jsonl"):
        train(config)
    assert _tree(run.path) == before  # a bad config or data leaves the old run whole


# --- training: cancel, events, resume bookkeeping -------------------------------------------------
def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _loss_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in _rows(run_dir / "metrics.jsonl") if "loss" in r]


def _assert_same_weights(a_dir: Path, b_dir: Path) -> None:
    from safetensors.torch import load_file

    a = load_file(a_dir / "adapter" / "adapter_model.safetensors")
    b = load_file(b_dir / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0)


def _logged_steps(run_dir: Path) -> int:
    try:
        return len(_loss_steps(run_dir))
    except (OSError, ValueError):  # not there yet, or a line being written
        return 0


class _AtStep:
    """A TrainerCallback that calls `action` at the end of optimizer step `step`."""

    def __new__(cls, step, action, hook="on_step_end"):
        from transformers import TrainerCallback

        def fire(self, args, state, control, **kw):
            if state.global_step == step:
                action()

        return type("AtStep", (TrainerCallback,), {hook: fire})()


def test_cancel_from_another_thread_then_resume_matches_an_uninterrupted_run(tiny_config, tmp_path, capsys):
    import tunesmith

    full = tunesmith.train(tiny_config(output={"dir": str(tmp_path / "full")}, method={"dropout": 0.1}))
    config = tiny_config(output={"dir": str(tmp_path / "cut")}, method={"dropout": 0.1})
    token, received = tunesmith.CancelToken(), []

    def cancel_from_a_thread():
        thread = threading.Thread(target=token.set)
        thread.start()
        thread.join()

    cut = tunesmith.train(config, cancel=token, events=received.append, callbacks=[_AtStep(1, cancel_from_a_thread)])
    run = RunDir(cut.run_dir)
    assert cut.status == "cancelled" and run.status() == "cancelled"
    assert run.last_checkpoint().name == "checkpoint-2"  # set after step 1: stops at the end of step 2
    assert received == _rows(run.path / "events.jsonl")  # subscribers see what events.jsonl keeps
    assert "saved" not in capsys.readouterr().err  # the library printed nothing itself
    identity = run.id

    resumed = tunesmith.train(config, resume=True)
    assert resumed.status == "succeeded" and resumed.run_id == identity == run.id
    _assert_same_weights(tmp_path / "full", tmp_path / "cut")
    assert _loss_steps(run.path) == list(range(1, 7))
    whole = json.loads((run.path / "results.json").read_text())["train"]["train_loss"]
    assert whole == pytest.approx(full.train_metrics["train_loss"], abs=1e-6)
    from datetime import datetime

    times = [datetime.fromisoformat(e["time"]) for e in _rows(run.path / "events.jsonl")]
    assert all(t.utcoffset().total_seconds() == 0 for t in times)


def test_a_cancel_file_from_another_process_stops_the_run(tiny_config):
    from tunesmith.training.runner import train

    config = tiny_config(train={"max_steps": 5})
    result = train(config, callbacks=[_AtStep(1, lambda: RunDir(config.output.dir).request_cancel())])
    assert result.status == "cancelled" and RunDir(result.run_dir).last_checkpoint().name == "checkpoint-2"
    assert (result.run_dir / "STATUS").read_text().startswith("cancelled\ncancelled at step 2")


def test_a_crash_after_logged_steps_resumes_without_repeating_them(tiny_config, tmp_path):
    from tunesmith.training.runner import train

    full = train(tiny_config(output={"dir": str(tmp_path / "full")}))
    config = tiny_config(output={"dir": str(tmp_path / "cut")})

    def crash():
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):  # after checkpoint-3, steps 4 and 5 are logged, then it dies
        train(config, callbacks=[_AtStep(5, crash, hook="on_log")])
    assert _loss_steps(tmp_path / "cut")[-1] == 5
    assert train(config, resume=True).status == "succeeded"
    assert _loss_steps(tmp_path / "cut") == list(range(1, 7))  # no step twice
    _assert_same_weights(tmp_path / "full", tmp_path / "cut")
    whole = json.loads((tmp_path / "cut" / "results.json").read_text())["train"]["train_loss"]
    assert whole == pytest.approx(full.train_metrics["train_loss"], abs=1e-6)


def test_two_trainings_into_one_directory_exactly_one_runs(tiny_config):
    from tunesmith.training.runner import train

    config = tiny_config(train={"max_steps": 3})
    start, outcomes = threading.Barrier(2), []

    def attempt():
        start.wait()
        try:
            outcomes.append(train(config.model_copy(deep=True)).status)
        except RunDirError as err:
            outcomes.append(str(err))

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert "succeeded" in outcomes and len(outcomes) == 2, outcomes
    refused = next(o for o in outcomes if o != "succeeded")
    assert f"is being written by pid {os.getpid()} on {os.uname().nodename}" in refused


def test_packed_batches_count_real_tokens_without_warnings(tiny_config):
    import logging

    from tunesmith.training.runner import train

    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger("transformers").addHandler(handler)
    try:
        result = train(tiny_config(train={"max_steps": 3, "packing": True}))
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    assert not [m for m in messages if "count non-padding tokens" in m], messages
    seen = [r["num_input_tokens_seen"] for r in _rows(result.run_dir / "metrics.jsonl") if "num_input_tokens_seen" in r]
    assert seen and 0 < seen[-1]


def test_a_library_message_reaches_the_user_once_per_run(tiny_config):
    import logging

    from tunesmith.training.process import configure_process

    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    library, app = logging.getLogger("transformers"), logging.getLogger("myapp")
    library.addHandler(handler)
    app.addHandler(handler)
    try:
        train = tiny_config().train
        configure_process(train)
        for _ in range(3):
            logging.getLogger("transformers.trainer").warning("same warning every step")
            app.warning("the application's own line")
        configure_process(train)  # the next run shows it again
        logging.getLogger("transformers.trainer").warning("same warning every step")
    finally:
        library.removeHandler(handler)
        app.removeHandler(handler)
    assert messages.count("same warning every step") == 2
    assert messages.count("the application's own line") == 3


def test_a_killed_training_reads_interrupted_and_resumes(tiny_config, tmp_path):
    import yaml

    from tunesmith.runs.reader import summarize
    from tunesmith.training.runner import train

    config = tiny_config(train={"max_steps": 400, "save_steps": 2, "threads": 1})  # the fastest for a tiny model
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "tunesmith.cli.main", "train", str(cfg)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = RunDir(config.output.dir)
    deadline = time.time() + 240
    try:  # wait for a checkpoint and a logged step after it
        while time.time() < deadline and not (run.last_checkpoint() and _logged_steps(run.path) >= 5):
            time.sleep(0.2)
    finally:
        proc.kill()  # SIGKILL: no handler runs, STATUS still says running
        proc.wait()
    assert (run.path / "STATUS").read_text().startswith("running")
    assert run.status() == "interrupted" and summarize(run.path).status == "interrupted"
    checkpoint = int(run.last_checkpoint().name.split("-")[1])
    config.train.max_steps = _loss_steps(run.path)[-1] + 2
    result = train(config, resume=True)
    assert result.status == "succeeded" and run.status() == "succeeded"
    steps = _loss_steps(run.path)
    assert steps == sorted(set(steps)) and steps[-1] == config.train.max_steps
    events = _rows(run.path / "events.jsonl")
    assert any(e["event"] == "lock" and f"pid {proc.pid}" in e["message"] for e in events)
    assert any(e["message"] == f"resuming from checkpoint-{checkpoint}" for e in events)


def test_cli_train_overwrite_refuses_a_user_folder_in_one_line(tiny_config, tmp_path, capsys):
    import yaml

    from tunesmith.cli.main import run as cli

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    before = _tree(folder)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config(output={"dir": str(folder)}).model_dump(mode="json")))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:  # in-process: any other exception is a traceback
        cli(["train", str(cfg), "--overwrite"])
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 2, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "is not a tunesmith run" in errors[0] and "Traceback" not in stderr
    assert _tree(folder) == before
