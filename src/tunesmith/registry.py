"""Registries: named collections filled by decorators, one per kind of extension.

The CLI, the config schema and `tunesmith <thing> list` are generated from them, so a new
method, task or format shows up everywhere without a central if/elif chain.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Iterator
from typing import Generic, TypeVar

from tunesmith.errors import TunesmithError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of specs with a helpful error for unknown names.

    Every registry is filled the same way: an entry's module decorates the class or function
    that does the work with `@register_<kind>(...)` (register_method, register_task,
    register_format, register_step, register_metric, register_exporter), which builds the entry
    and calls `REGISTRY.register(entry)`; the entry carries its own `name`."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, item: T, name: str | None = None) -> T:
        """Add `item` under its `name` (or `name`, for entries without one, such as config classes)."""
        name = item.name if name is None else name
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        if name not in self._items:
            raise TunesmithError(self.unknown_message(name))
        return self._items[name]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), self.names(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Choose one of: {', '.join(self.names())}"

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self._items[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._items)


def import_submodules(package: str, path) -> None:
    """Import every module of a package; each registers itself, so adding one is adding a file."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")
