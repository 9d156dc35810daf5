"""How the library reports to a person: `say` a one-line note, or show `progress` through a loop.

Library code calls only `say` and `progress`; they go to the reporter of the current context
(a ContextVar, so concurrent callers each keep their own). The default reporter is quiet: a
server, a jobs worker or a test prints nothing, and notes go to the "tunesmith" logger at INFO.
Front ends install `RichReporter` (the console on stderr, bars with ETA) with `use_reporter`.
A ContextVar is not inherited by a new thread: start it with `contextvars.copy_context().run`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

console = Console(stderr=True)  # front ends only (cli/, quickstart, RichReporter)

Advance = Callable[..., None]  # advance(n=1, info="")


class Reporter:
    """The quiet default: notes go to the "tunesmith" logger (markup removed), progress nowhere.
    Subclass and override `say` and/or `progress` to receive reports elsewhere."""

    def say(self, message: str) -> None:
        logging.getLogger("tunesmith").info(plain(message))

    @contextmanager
    def progress(self, label: str, total: int | None) -> Iterator[Advance]:
        yield lambda n=1, info="": None


class RichReporter(Reporter):
    """The command line's reporter: notes on the stderr console, a rich bar with ETA."""

    def say(self, message: str) -> None:
        console.print(message, highlight=False, soft_wrap=True)

    @contextmanager
    def progress(self, label: str, total: int | None) -> Iterator[Advance]:
        bar = make_progress(label)
        task = bar.add_task(label, total=total, info="")

        def advance(n: int = 1, info: str = "") -> None:
            bar.update(task, advance=n, info=info)

        with bar:
            yield advance


QUIET = Reporter()
_reporter: ContextVar[Reporter | None] = ContextVar("tunesmith_reporter", default=None)


def current_reporter() -> Reporter:
    """The reporter `say` and `progress` use here (QUIET unless a caller installed one)."""
    return _reporter.get() or QUIET


def say(message: str) -> None:
    """A one-line note for a person (rich markup allowed), to the current reporter."""
    current_reporter().say(message)


def progress(label: str, total: int | None = None):
    """A context manager yielding `advance(n=1, info="")`: n more of `total` items are done."""
    return current_reporter().progress(label, total)


@contextmanager
def use_reporter(reporter: Reporter) -> Iterator[Reporter]:
    """Send this context's `say`/`progress` reports to `reporter` until the block ends."""
    token = _reporter.set(reporter)
    try:
        yield reporter
    finally:
        _reporter.reset(token)


def plain(message: str) -> str:
    """The text of a message written in rich markup."""
    try:
        return Text.from_markup(message).plain
    except MarkupError:
        return message


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
    bar = make_progress(label)
    task = None

    def advance(n: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(label, total=None, info="")
        bar.update(task, advance=n)

    try:
        yield advance
    finally:
        bar.stop()
