"""Rich progress bars with ETA, shared by training, evaluation and generation."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


# lifecycle events a person reading the console does not need (events.jsonl keeps them); a
# failure is printed by the command's error line
UNPRINTED_EVENTS = {"train_begin", "train_end", "checkpoint", "failed"}


def print_event(event: dict) -> None:
    """An event subscriber (runs/events.py) for front ends: one line per event on the console."""
    if event.get("event") not in UNPRINTED_EVENTS:
        console.print(escape(str(event.get("message", ""))), highlight=False, soft_wrap=True)


def make_progress(label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=False,
        disable=not sys.stderr.isatty(),
    )


@contextmanager
def progress_reports(label: str):
    """An `on_progress(n)` callback for a library call (n: items it just finished), drawn as a bar
    that appears at the first report; the total is not known in advance."""
    progress = make_progress(label)
    task = None

    def advance(n: int) -> None:
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task(label, total=None, info="")
        progress.update(task, advance=n)

    try:
        yield advance
    finally:
        progress.stop()
