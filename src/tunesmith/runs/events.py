"""A run's lifecycle events: one line each in events.jsonl, and a call to every subscriber.

Library code reports through this sink, never to a console: the CLI subscribes a printer, a
jobs worker a queue, a test a list's append. Subscribers are called in the thread that emits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

from tunesmith.utils.io import append_jsonl

Subscriber = Callable[[dict], None]


def utc_now() -> str:
    """Now as a timezone-aware ISO 8601 timestamp in UTC."""
    return datetime.now(timezone.utc).isoformat()


def parse_time(text: str) -> datetime:
    """An event time back as an aware datetime; older runs wrote naive local times."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.astimezone()


class EventSink:
    def __init__(self, file: Path | None = None, subscribers: Iterable[Subscriber] = ()):
        self.file = file
        self.subscribers: list[Subscriber] = list(subscribers)

    def subscribe(self, *subscribers: Subscriber) -> None:
        self.subscribers += subscribers

    def emit(self, kind: str, message: str, **data) -> dict:
        """Record one event ({time, event, message, **data}) and pass it to every subscriber."""
        row = {"time": utc_now(), "event": kind, "message": message, **data}
        if self.file is not None:
            append_jsonl(self.file, row)
        for subscriber in list(self.subscribers):
            subscriber(row)
        return row


def as_subscribers(events: Subscriber | Iterable[Subscriber] | None) -> list[Subscriber]:
    """`events=` of train(): one callable, several, or none."""
    if events is None:
        return []
    return [events] if callable(events) else list(events)
