"""Atomic file writes: a crash never leaves a half-written file that looks whole."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import yaml

from tunesmith.errors import TunesmithError

_UMASK = os.umask(0)
os.umask(_UMASK)
_TEXT = {"encoding": "utf-8", "newline": ""}


def is_stream(path: str | os.PathLike) -> bool:
    """True for `-` (stdout) and for existing paths that are not regular files or folders:
    devices, pipes, sockets. Those are written in place; renaming a temporary file over
    /dev/null would replace the machine's null device with a plain file."""
    if str(path) == "-":
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds.
    A device or pipe is yielded itself (written in place, never replaced); `-` is stdout."""
    if is_stream(path):
        yield Path("/dev/stdout") if str(path) == "-" else Path(path)
        return
    path = Path(path)
    if path.is_dir():
        raise TunesmithError(f"output {path} is a directory; name a file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise TunesmithError(f"cannot write {path}: {err.strerror or err}; choose another output path") from None
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a finished file gets normal permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def open_output(path: str | os.PathLike, binary: bool = False) -> Iterator[IO]:
    """A file object for an output: stdout for `-`, the device or pipe itself, else an atomic
    temporary file (text: UTF-8 with newlines as written)."""
    if str(path) == "-":
        stream = sys.stdout.buffer if binary else sys.stdout
        yield stream
        stream.flush()
        return
    with atomic_path(path) as tmp, open(tmp, "wb" if binary else "w", **({} if binary else _TEXT)) as f:
        yield f


@contextmanager
def replace_dir(target: str | os.PathLike, *, keep_existing: bool = False) -> Iterator[Path]:
    """Yield an empty folder beside `target`; when the block succeeds it takes `target`'s place
    whole (an old `target` is moved aside first and removed only after the swap). With
    `keep_existing`, a `target` that appeared meanwhile wins and our folder is dropped (caches).

    Work folders are named `.{name}.tmp-{pid}-*` and `.{name}.old-{pid}-*`: those of dead
    processes (a killed export of hundreds of MB) are cleaned up by the next call for `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_dirs(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes it owner-only; a finished folder is shared as usual
    try:
        yield tmp
        if keep_existing:
            with suppress(OSError):  # a target stored meanwhile (another process) is kept
                os.rename(tmp, target)
            return
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{tmp.name.rsplit('-', 1)[-1]}")
        if target.exists() or target.is_symlink():
            os.rename(target, old)
        os.rename(tmp, target)
        _remove(old)
    finally:
        _remove(tmp)


def remove_stale_dirs(target: str | os.PathLike) -> list[Path]:
    """Work folders of `replace_dir` for `target` whose process is gone: a `.tmp-` folder is
    removed; an `.old-` folder is the previous `target` and goes back in place if the swap died
    half-way (target missing), else it is removed. Returns what was cleaned."""
    target = Path(target)
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(tmp|old)-(\d+)-[^/]+")
    cleaned = []
    for entry in sorted(target.parent.iterdir()):
        match = pattern.fullmatch(entry.name)
        if not match or pid_alive(int(match.group(2))):
            continue
        if match.group(1) == "old" and not (target.exists() or target.is_symlink()):
            os.rename(entry, target)
        else:
            _remove(entry)
        cleaned.append(entry)
    return cleaned


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (signal 0 tests without sending)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with open_output(path) as f:
        f.write(text)


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def write_yaml(path: str | os.PathLike, data: Any) -> None:
    write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def write_jsonl(path: str | os.PathLike, rows: list[dict]) -> None:
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def append_jsonl(path: str | os.PathLike, row: dict) -> None:
    """Append one line; a line is written whole with one write call and flushed."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        f.flush()


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def save_png(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write a matplotlib figure as PNG atomically and close it (figures are not reused)."""
    import matplotlib.pyplot as plt

    try:
        with open_output(path, binary=True) as f:
            fig.savefig(f, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return Path(path)
