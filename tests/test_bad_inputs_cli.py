"""Bad inputs through the command line, run in-process: each ends in one `error:` line naming the
file, key or option, exit code 2, no traceback, and every file that was there before is untouched.

The corpus (broken model folders, adapters, outputs, user folders) is generated in tmp_path."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from tunesmith.cli.main import run


def snapshot(*roots: Path) -> dict[str, bytes]:
    """Every file below `roots`, by path, with its bytes."""
    files = {}
    for root in roots:
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            if path.is_file():
                files[str(path)] = path.read_bytes()
    return files


def fails(capsys, argv: list, *fragments: str, keep: tuple[Path, ...] = ()) -> str:
    """Run the CLI; assert the one-line user error and that the files below `keep` are unchanged."""
    before = snapshot(*keep)
    with pytest.raises(SystemExit) as stop:  # any other exception would be a traceback
        run([str(a) for a in argv])
    out, err = capsys.readouterr()
    text = out + err
    assert stop.value.code == 2, text
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, text
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert snapshot(*keep) == before, "a pre-existing file changed"
    return errors[0]


def succeeds(capsys, argv: list) -> tuple[str, str]:
    code = run([str(a) for a in argv])
    assert code in (None, 0)
    return capsys.readouterr()


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir, tmp_path_factory) -> Path:
    """A one-step LoRA run of the tiny llama."""
    from tunesmith.config import validate_config
    from tunesmith.training.runner import train

    folder = tmp_path_factory.mktemp("bad-inputs-run")
    rows = [{"messages": [{"role": "user", "content": f"what is {i} plus {i}?"},
                          {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]} for i in range(8)]
    (folder / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = validate_config({
        "model": {"name_or_path": str(tiny_model_dir)},
        "data": {"train": [str(folder / "chat.jsonl")], "eval_ratio": 0.25, "template": "chatml"},
        "method": {"name": "lora", "r": 2, "dropout": 0.0},
        "train": {"max_steps": 1, "batch_size": 2, "precision": "fp32", "save_steps": 100},
        "eval": {"before_training": False},
        "output": {"dir": str(folder / "run")},
    })
    return train(config).run_dir


@pytest.fixture
def prompts(tmp_path) -> Path:
    """Two prompt-only rows: a user turn with no answer yet."""
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": q}]}) + "\n"
                            for q in ("hello there", "what is 2 plus 2?")))
    return path


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# --- usage errors: typer's own (bundled click) exceptions ---------------------------------------

@pytest.mark.parametrize("argv, fragments", [
    (["nosuch"], ["No such command", "nosuch"]),
    (["trian"], ["No such command", "trian", "train"]),  # with a suggestion
    (["train"], ["Missing argument", "config"]),
    (["models", "list", "--bogus"], ["No such option", "--bogus"]),
    (["runs", "list", "--sort"], ["--sort", "requires an argument"]),
    (["chat", "x", "--max-new-tokens", "many"], ["--max-new-tokens", "valid integer"]),
    (["export", "x", "--to", "merged", "--sparsity", "half"],
     ["--sparsity", "valid number", "tunesmith export --help"]),
    (["generate", "x", "--input", "in.jsonl"], ["Missing option", "--output"]),
])
def test_usage_errors_are_one_line(capsys, argv, fragments):
    line = fails(capsys, argv, *fragments)
    assert "--help" in line  # says where the usage is explained


def test_debug_still_shows_the_exception(capsys):
    from typer import TyperException

    with pytest.raises(TyperException):
        run(["--debug", "nosuch"])


def test_a_folder_given_as_config_is_one_line(capsys, tmp_path):
    fails(capsys, ["config", "check", tmp_path], str(tmp_path), keep=(tmp_path,))


# --- model folders ------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_safetensors_model_is_named(capsys, tmp_path, tiny_model_dir, damage):
    model = _copy(tiny_model_dir, tmp_path / "model")
    weights = model / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"not weights " * 50, "empty": b""}[damage])
    fails(capsys, ["chat", model, "--prompt", "hi"], str(weights), "truncated or corrupt", keep=(tmp_path,))


def test_pickle_only_model_is_refused_with_the_reason(capsys, tmp_path, tiny_model_dir):
    import torch
    from safetensors.torch import load_file

    model = _copy(tiny_model_dir, tmp_path / "model")
    torch.save(load_file(model / "model.safetensors"), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()
    line = fails(capsys, ["generate", model, "--input", tmp_path / "in.jsonl", "--output", tmp_path / "o.jsonl"],
                 str(model / "pytorch_model.bin"), "safetensors", keep=(tmp_path,))
    assert "run arbitrary code" in line
    assert not (tmp_path / "o.jsonl").exists()


def _foreign_tokenizer_model(folder: Path) -> Path:
    """A tiny llama with 64 embedding rows, saved with a ~400-token tokenizer of another model."""
    from tiny import tiny_llama, tiny_tokenizer

    tiny_llama(64).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


def test_another_models_tokenizer_is_refused_for_chat(capsys, tmp_path):
    model = _foreign_tokenizer_model(tmp_path / "model")
    fails(capsys, ["chat", model, "--prompt", "hi"], str(model), "64 embedding rows", "tokenizer",
          keep=(tmp_path,))


def test_another_models_tokenizer_is_refused_before_training(capsys, tmp_path, chat_file):
    model = _foreign_tokenizer_model(tmp_path / "model")
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"name_or_path": str(model)},
        "data": {"train": [str(chat_file)], "eval_ratio": 0.25, "template": "chatml"},
        "method": {"name": "lora", "r": 2}, "train": {"max_steps": 2, "batch_size": 2, "precision": "fp32"},
        "output": {"dir": str(tmp_path / "run")},
    }))
    fails(capsys, ["train", config], "64 embedding rows", keep=(model, chat_file, config))
    assert not (tmp_path / "run" / "adapter").exists() and not (tmp_path / "run" / "checkpoints").exists()


# --- a run's adapter ----------------------------------------------------------------------------

def test_truncated_adapter_is_named(capsys, tmp_path, tiny_run):
    run_dir = _copy(tiny_run, tmp_path / "run")
    weights = run_dir / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    fails(capsys, ["chat", run_dir, "--prompt", "hi"], str(weights), "truncated or corrupt", keep=(tmp_path,))


def test_pickle_only_adapter_is_refused(capsys, tmp_path, tiny_run):
    import torch
    from safetensors.torch import load_file

    run_dir = _copy(tiny_run, tmp_path / "run")
    adapter = run_dir / "adapter"
    torch.save(load_file(adapter / "adapter_model.safetensors"), adapter / "adapter_model.bin")
    (adapter / "adapter_model.safetensors").unlink()
    fails(capsys, ["predict", run_dir, "--input", tmp_path / "x.jsonl", "--output", tmp_path / "p.jsonl"],
          str(adapter / "adapter_model.bin"), "safetensors", keep=(tmp_path,))


# --- trust_remote_code comes only from the command line -----------------------------------------

def _remote_code_base(tiny_model_dir: Path, folder: Path) -> Path:
    """The tiny llama with an auto_map to model code that leaves a marker file when it runs."""
    base = _copy(tiny_model_dir, folder)
    marker = folder.parent / "remote-code-ran"
    (base / "modeling_marked.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "from transformers import LlamaForCausalLM\n\n\nclass MarkedLlama(LlamaForCausalLM):\n    pass\n")
    config = json.loads((base / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_marked.MarkedLlama"}
    (base / "config.json").write_text(json.dumps(config))
    return base


def test_a_runs_config_cannot_enable_remote_code(capsys, tmp_path, tiny_run, tiny_model_dir):
    base = _remote_code_base(tiny_model_dir, tmp_path / "base")
    run_dir = _copy(tiny_run, tmp_path / "run")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["model"].update(name_or_path=str(base), trust_remote_code=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    marker = tmp_path / "remote-code-ran"
    succeeds(capsys, ["chat", run_dir, "--prompt", "hi", "--max-new-tokens", "2"])
    assert not marker.exists(), "the run's config.yaml ran model code"
    succeeds(capsys, ["chat", run_dir, "--prompt", "hi", "--max-new-tokens", "2", "--trust-remote-code"])
    assert marker.read_text() == "ran"  # the flag does allow it


# --- outputs ------------------------------------------------------------------------------------

def test_output_that_is_a_folder(capsys, tmp_path, tiny_model_dir, prompts):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep me")
    fails(capsys, ["generate", tiny_model_dir, "--input", prompts, "--output", tmp_path / "out"],
          "--output", str(tmp_path / "out"), "folder", keep=(tmp_path,))


def test_output_below_a_file(capsys, tmp_path, tiny_model_dir, prompts):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    fails(capsys, ["generate", tiny_model_dir, "--input", prompts, "--output", tmp_path / "notes.txt" / "o.jsonl"],
          str(tmp_path / "notes.txt"), "not a folder", keep=(tmp_path,))


def test_eval_report_folder_that_is_a_file(capsys, tmp_path, tiny_model_dir, prompts):
    (tmp_path / "report").write_text("mine")
    fails(capsys, ["eval", tiny_model_dir, "--data", prompts, "--output", tmp_path / "report"],
          str(tmp_path / "report"), "is a file", keep=(tmp_path,))


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_output_in_a_read_only_folder(capsys, tmp_path, tiny_run):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        fails(capsys, ["runs", "compare", tiny_run, "--output", locked / "c.png"], str(locked), "not writable",
              keep=(tmp_path,))
    finally:
        locked.chmod(0o700)


def test_os_errors_become_one_line_with_the_path():
    import errno

    from tunesmith.cli.main import os_error_line

    line = os_error_line(OSError(errno.EROFS, os.strerror(errno.EROFS), "/mnt/ro/out.jsonl"))
    assert line.startswith("/mnt/ro/out.jsonl: ") and "read-only" in line and "\n" not in line
    line = os_error_line(PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/srv/x"))
    assert "/srv/x" in line and "permissions" in line


# --- export --overwrite replaces only an earlier export -----------------------------------------

def test_export_overwrite_keeps_a_user_folder(capsys, tmp_path, tiny_run):
    mine = tmp_path / "my-folder"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    fails(capsys, ["export", tiny_run, "--to", "merged", "--out", mine, "--overwrite"],
          str(mine), "export_report.json", keep=(tmp_path, tiny_run / "config.yaml"))
    assert (mine / "thesis.tex").read_text() == "years of work"


def test_export_overwrite_refuses_a_file_and_a_run(capsys, tmp_path, tiny_run):
    target = tmp_path / "model.bin"
    target.write_bytes(b"\x00" * 10)
    fails(capsys, ["export", tiny_run, "--to", "merged", "--out", target, "--overwrite"], str(target), "file",
          keep=(tmp_path,))
    fails(capsys, ["export", tiny_run, "--to", "merged", "--out", tiny_run, "--overwrite"], str(tiny_run),
          "not a tunesmith export", keep=(tiny_run,))


def test_export_overwrite_may_replace_an_earlier_export(tmp_path):
    from tunesmith.errors import TunesmithError
    from tunesmith.export.pipeline import check_replaceable

    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "export_report.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    check_replaceable(earlier)
    check_replaceable(tmp_path / "empty")
    check_replaceable(tmp_path / "not-there")
    (earlier / "export_report.json").unlink()
    (earlier / "notes.md").write_text("mine")
    with pytest.raises(TunesmithError, match="not a tunesmith export"):
        check_replaceable(earlier)


# --- runs ---------------------------------------------------------------------------------------

def test_unreadable_runs_folder_is_one_line(capsys, tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    (folder / "secret").mkdir(parents=True)
    folder.chmod(0o000)
    if os.geteuid() == 0:  # root reads anything: have the system refuse as it would a user
        real = Path.iterdir

        def iterdir(self):
            if self == folder:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)

        monkeypatch.setattr(Path, "iterdir", iterdir)
    try:
        fails(capsys, ["runs", "list", folder], str(folder), "permission denied")
    finally:
        folder.chmod(0o700)


# --- generation from prompts; listings on stdout ------------------------------------------------

def test_generate_answers_prompt_only_rows(capsys, tmp_path, tiny_model_dir, prompts):
    out = tmp_path / "pred.jsonl"
    succeeds(capsys, ["generate", tiny_model_dir, "--input", prompts, "--output", out, "--max-new-tokens", "2"])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and rows[0]["reference"] is None and isinstance(rows[0]["prediction"], str)


def test_predict_answers_prompt_only_rows(capsys, tmp_path, tiny_run, prompts):
    out = tmp_path / "pred.jsonl"
    succeeds(capsys, ["predict", tiny_run, "--input", prompts, "--output", out, "--max-new-tokens", "2"])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and "hello there" in rows[0]["prompt"] and "2 plus 2" in rows[1]["prompt"]
    assert all(r["reference"] is None and isinstance(r["prediction"], str) for r in rows)
    assert not out.with_suffix(".metrics.json").exists()  # nothing to score without references


def test_listings_go_to_stdout_and_json(capsys, tiny_run):
    out, err = succeeds(capsys, ["models", "list"])
    assert "minilm-l6" in out and "minilm-l6" not in err
    for argv, key in [(["models", "list"], "name"), (["methods", "list"], "name"), (["tasks", "list"], "name"),
                      (["formats", "list"], "name"), (["metrics", "list"], "metric"),
                      (["exporters", "list"], "name")]:
        out, _ = succeeds(capsys, [*argv, "--json"])
        rows = json.loads(out)
        assert rows and all(key in r for r in rows), argv
    out, _ = succeeds(capsys, ["runs", "list", tiny_run.parent, "--json"])
    assert [r["path"] for r in json.loads(out)] == [str(tiny_run)]
    out, _ = succeeds(capsys, ["runs", "show", tiny_run, "--json"])
    shown = json.loads(out)
    assert shown["status"] == "succeeded" and shown["config"]["method"]["name"] == "lora"
    out, _ = succeeds(capsys, ["config", "show", tiny_run / "config.yaml", "--json"])
    assert json.loads(out)["method"]["r"] == 2
