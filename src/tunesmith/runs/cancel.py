"""Cancelling a training without signals: from another thread, or from another process."""

from __future__ import annotations

import threading
from pathlib import Path

CANCEL_FILE = "CANCEL"  # created in a run directory by anyone who wants that run to stop


class CancelToken:
    """Ask a training to stop: it finishes the current optimizer step, saves a checkpoint and ends
    with STATUS cancelled (resumable with resume=True / --resume), exactly as Ctrl-C does.

    `set()` works from any thread; a token made with `flag_file` is also set when that file
    exists, so another process can cancel by creating it (RunDir.request_cancel)."""

    def __init__(self, flag_file: str | Path | None = None):
        self._event = threading.Event()
        self.flag_file = Path(flag_file) if flag_file is not None else None

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set() or (self.flag_file is not None and self.flag_file.exists())
