"""Rich progress bars with ETA, shared by training, evaluation and generation."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


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
