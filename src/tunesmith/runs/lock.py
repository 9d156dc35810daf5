"""One writer per run directory: an exclusive lock on RUN/LOCK, a file naming its owner.

The lock is an flock(2) on the file, so the kernel drops it when its process dies (even by
kill -9): a lock left by a dead process is stale and the next writer takes it over. The pid and
host written into the file are for people and readers (RunDir.status), not for the exclusion.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from tunesmith.errors import RunDirError
from tunesmith.runs.events import utc_now
from tunesmith.utils.io import pid_alive

LOCK_FILE = "LOCK"


@dataclass
class LockOwner:
    pid: int
    host: str
    since: str

    def alive(self) -> bool | None:
        """Whether the owner still runs; None when it runs on another machine (cannot tell)."""
        return pid_alive(self.pid) if self.host == socket.gethostname() else None

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} (since {self.since})"


def read_owner(run_path: str | Path) -> LockOwner | None:
    """Who holds (or last held, if it died) the run's lock; None without a readable lock file."""
    try:
        data = json.loads((Path(run_path) / LOCK_FILE).read_text(encoding="utf-8"))
        return LockOwner(int(data["pid"]), str(data["host"]), str(data.get("since", "?")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _wait_for_owner(run_path: Path, tries: int = 40) -> LockOwner | None:
    """The holder writes its name right after it locks: give it that moment (at most ~1 s)."""
    for _ in range(tries):
        owner = read_owner(run_path)
        if owner:
            return owner
        time.sleep(0.025)
    return None


class RunLock:
    """`with RunLock(path):` holds the run directory for this writer, or raises RunDirError naming
    the writer that holds it. `stale` is the dead owner whose lock was taken over, if any."""

    def __init__(self, run_path: str | Path):
        self.path = Path(run_path)
        self.file = self.path / LOCK_FILE
        self.stale: LockOwner | None = None
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                owner = _wait_for_owner(self.path)
                who = owner.describe() if owner else "another process"
                raise RunDirError(
                    f"{self.path} is being written by {who}; a run directory has one writer: wait for "
                    "it to finish, or stop it and continue with --resume"
                ) from None
            if self._still_the_lock_file(fd):
                break
            os.close(fd)  # its owner removed the file as we opened it: take the new one
        self.stale = read_owner(self.path)
        mine = {"pid": os.getpid(), "host": socket.gethostname(), "since": utc_now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(mine).encode(), 0)
        self._fd = fd
        return self

    def _still_the_lock_file(self, fd: int) -> bool:
        try:
            return os.stat(self.file).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        if self._fd is None:
            return
        self.file.unlink(missing_ok=True)  # while still held, so no one locks a file about to vanish
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
