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
