"""The process-wide settings a training makes, all of them here, made once per `train()` call.

They affect every thread of the process (a server running several things at once sees them):

- torch intra-op threads: `train.threads`, else one per CPU this process may use. torch counts
  the machine's cores, which oversubscribes a container limited to fewer (cgroup CPU quota).
- random seeds of python, numpy and torch: `train.seed` (transformers.set_seed), so that a run
  is reproducible and a resumed run replays an uninterrupted one.
- library log messages: each distinct message of transformers, peft, trl, accelerate or
  datasets reaches the user once per run, not once per step (a filter on the handlers that print
  them); their levels are left as they are.
- one environment variable, only for MLflow's local file store (`allow_mlflow_file_store`).
Not changed: the umask (utils/io reads it once at import), the working directory, signals
outside training (InterruptCallback restores the handlers it installs).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

LIBRARIES = ("transformers", "peft", "trl", "accelerate", "datasets")


def configure_process(train) -> int:
    """Apply the settings above for a run with these `train.*` options; returns the thread count."""
    from transformers import set_seed

    threads = configure_threads(train.threads)
    set_seed(train.seed)
    for handler in _library_handlers():
        once = next((f for f in handler.filters if isinstance(f, _OncePerRun)), None)
        if once is None:
            once = _OncePerRun()  # one per handler: each output shows a message once
            handler.addFilter(once)
        once.reset()
    return threads


def usable_cpus() -> int:
    """CPUs this process may really use: its affinity, capped by a cgroup CPU quota (containers)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return count


def configure_threads(threads: int | None) -> int:
    """Intra-op threads: as configured, else one per usable CPU. Returns the number set."""
    import torch

    wanted = threads or usable_cpus()
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted


def allow_mlflow_file_store() -> None:
    """MLflow 3 keeps its file store behind this opt-in; it is the zero-setup local default the
    docs promise (sqlite:///mlflow.db for a database). A value the user set is kept."""
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")


class _OncePerRun(logging.Filter):
    """Lets each distinct (logger, level, message) through once until the next reset."""

    def __init__(self):
        super().__init__()
        self.seen: set[tuple[str, int, str]] = set()

    def reset(self) -> None:
        self.seen = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".", 1)[0] not in LIBRARIES:
            return True  # the application's own messages are not ours to thin out
        key = (record.name, record.levelno, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def _library_handlers() -> list[logging.Handler]:
    """The handlers that print library messages: a library's own (transformers has one) and,
    for libraries that log to the root, the root's handlers or Python's last-resort handler."""
    handlers = [h for name in LIBRARIES for h in logging.getLogger(name).handlers]
    handlers += logging.getLogger().handlers or ([logging.lastResort] if logging.lastResort else [])
    return handlers
