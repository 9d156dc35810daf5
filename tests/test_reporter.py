"""Library code reports through the context's reporter (utils/progress.py): quiet by default
(a server, a worker or a test prints nothing), on stderr under the CLI, anywhere a caller likes."""

import ast
import json
import logging
from contextlib import contextmanager
from pathlib import Path

from tunesmith.cli.main import run as cli
from tunesmith.utils.progress import Reporter, plain, use_reporter

SRC = Path(__file__).resolve().parents[1] / "src" / "tunesmith"
DEDUP = {"step": "dedup", "method": "exact"}


class Recorder(Reporter):
    """A caller's reporter: keeps every note and every advance."""

    def __init__(self):
        self.notes, self.advances = [], []

    def say(self, message):
        self.notes.append(message)

    @contextmanager
    def progress(self, label, total):
        yield lambda n=1, info="": self.advances.append((label, total, n, info))


def _rows_file(tmp_path):
    path = tmp_path / "rows.jsonl"
    texts = ["the cat sat", "a dog ran", "the cat sat", "birds fly south"]
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def test_a_library_call_prints_nothing_by_default_and_logs_its_notes(tmp_path, capfd, caplog):
    from tunesmith.data.steps import run_pipeline
    from tunesmith.data.tools import apply_step

    report = apply_step([str(_rows_file(tmp_path))], DEDUP, tmp_path / "out.jsonl")
    with caplog.at_level(logging.INFO, logger="tunesmith"):
        rows, _ = run_pipeline([{"text": "x"}, {"text": "x"}, {"text": "y"}], [DEDUP])
    assert (report.rows_in, report.rows_out, len(rows)) == (4, 3, 2)
    assert capfd.readouterr() == ("", "")
    assert "data step dedup: 3 -> 2 rows" in caplog.messages  # markup-free, not lost


def test_a_callers_reporter_receives_notes_and_progress(tmp_path, capfd):
    from tunesmith.data.steps import run_pipeline
    from tunesmith.data.tools import apply_step

    recorder = Recorder()
    with use_reporter(recorder):
        apply_step([str(_rows_file(tmp_path))], DEDUP, tmp_path / "out.jsonl")
        run_pipeline([{"text": "x"}, {"text": "x"}, {"text": "y"}], [DEDUP])
    assert recorder.advances[0][0] == "dedup" and recorder.advances[0][2:] == (4, "1 duplicates")
    assert recorder.notes == ["data step dedup: 3 -> 2 rows"]
    assert capfd.readouterr() == ("", "")
    run_pipeline([{"text": "z"}], [DEDUP])  # the block ended: back to the quiet default
    assert len(recorder.notes) == 1


def test_eval_notes_go_to_stderr_under_the_cli_only(tiny_model_dir, chat_file, tmp_path, capsys):
    from tunesmith.evaluation.report import EvalRequest, run_evaluation

    note = f"evaluating {tiny_model_dir.name} on {chat_file} (12 rows): perplexity"
    run_evaluation(EvalRequest([str(tiny_model_dir)], str(chat_file), ["perplexity"], tmp_path / "lib"))
    assert "evaluating" not in "".join(capsys.readouterr())
    recorder = Recorder()
    with use_reporter(recorder):
        run_evaluation(EvalRequest([str(tiny_model_dir)], str(chat_file), ["perplexity"], tmp_path / "rec"))
    assert any(note in plain(n) for n in recorder.notes)
    assert sum(n for label, _, n, _ in recorder.advances if label == "score") == 12
    cli(["eval", str(tiny_model_dir), "--data", str(chat_file), "--metrics", "perplexity",
         "--output", str(tmp_path / "cli")])
    assert note in " ".join(capsys.readouterr().err.split())


def _console_users() -> list[str]:
    front_ends = {SRC / "utils" / "progress.py", SRC / "quickstart.py", SRC / "sweep" / "worker.py"}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path in front_ends or path.is_relative_to(SRC / "cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("utils.progress"):
                found += [f"{path.relative_to(SRC)}:{node.lineno} imports {a.name}" for a in node.names
                          if a.name in {"console", "make_progress", "progress_reports", "RichReporter"}]
    return found


def test_only_front_ends_print_to_the_console():
    assert not _console_users(), "library code reports with say()/progress():\n" + "\n".join(_console_users())
