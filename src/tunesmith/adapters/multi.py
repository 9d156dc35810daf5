"""Several LoRA adapters on one base model, loaded once; each request picks its adapter, and
requests on different adapters may run at the same time (also in one batch).

    adapters = load_adapter_set({"legal": "runs/legal", "medical": "runs/medical"})
    adapters.reply("legal", [[{"role": "user", "content": "..."}]])
    for piece in adapters.stream("medical", [{"role": "user", "content": "..."}]):
        print(piece, end="")
    with adapters.using("medical"):
        logits = adapters.model(**batch).logits
    adapters.add("finance", "runs/finance")  # while other threads generate

No call switches the model's active adapter: each caller's rows are routed to their adapter
(tunesmith.inference.routing), so a request in flight is unaffected by other requests and by
adapters being added or removed (removing one waits for the requests that use it).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tunesmith.adapters.sources import AdapterSource, adapter_source
from tunesmith.errors import ConfigError
from tunesmith.inference.load import Loaded, attach_adapter, load_weights
from tunesmith.inference.routing import BASE, install_routing, routed
from tunesmith.models import resolve_model

__all__ = ["BASE", "AdapterSet", "load_adapter_set"]


class AdapterSet:
    def __init__(self, loaded: Loaded, sources: dict[str, AdapterSource]):
        self.loaded = loaded  # model is a PeftModel holding every adapter
        self.sources = dict(sources)  # replaced, never changed in place: readers need no lock
        self._changes = threading.Lock()  # one add/remove at a time
        self._in_use: Counter[str] = Counter()
        self._released = threading.Condition()

    @property
    def model(self):
        return self.loaded.model

    @property
    def names(self) -> list[str]:
        return list(self.sources)

    @contextmanager
    def using(self, name: str):
        """Run the body with adapter `name` (or `base`) for this caller's forwards of the model."""
        with self._hold([name]), routed(self.model, name):
            yield self.model

    def reply(self, name: str, conversations: list[list[dict]], **kwargs) -> list[str]:
        """generate_replies with adapter `name` (keyword arguments as there)."""
        return self.replies([name] * len(conversations), conversations, **kwargs)

    def replies(self, names: list[str], conversations: list[list[dict]], **kwargs) -> list[str]:
        """One adapter per conversation, batched together."""
        from tunesmith.inference.generate import generate_replies

        with self._hold(names):
            return generate_replies(self.loaded, conversations, adapter_names=names, **kwargs)

    def stream(self, name: str, conversation: list[dict], params=None, cancel=None) -> Iterator[str]:
        """stream_reply with adapter `name`."""
        from tunesmith.inference.generate import stream_reply

        with self._hold([name]):
            yield from stream_reply(self.loaded, conversation, params, adapter_name=name, cancel=cancel)

    def add(self, name: str, path: str | Path) -> AdapterSource:
        """Load one more adapter (a run directory or PEFT adapter folder) on the shared base."""
        source = adapter_source(path)
        with self._changes:
            _check_names([name], taken=self.sources)
            _check_joins({**self.sources, name: source})
            try:
                attach_adapter(self.model, name, source.path)
            except (ValueError, KeyError, TypeError) as err:
                if name in self.model.peft_config:
                    self.model.delete_adapter(name)
                raise ConfigError(f"adapter {name} ({source.path}) cannot join the others: {err}") from None
            self.model.eval()
            install_routing(self.model)
            self.sources = {**self.sources, name: source}
        return source

    def remove(self, name: str) -> None:
        """Unload adapter `name` once the requests using it have finished; new ones are refused."""
        with self._changes:
            if name not in self.sources:
                raise ConfigError(f"unknown adapter {name!r}; loaded: {', '.join(self.names)}")
            if len(self.sources) == 1:
                raise ConfigError(f"{name} is the only adapter; a set keeps at least one")
            self.sources = {n: s for n, s in self.sources.items() if n != name}
            with self._released:
                self._released.wait_for(lambda: not self._in_use[name])
            self.model.delete_adapter(name)

    @contextmanager
    def _hold(self, names: list[str]):
        """Count the requests on each adapter (so `remove` can wait for them); refuse unknown names."""
        used = set(names) - {BASE, None}
        with self._released:
            unknown = sorted(used - set(self.sources))
            if unknown:
                raise ConfigError(f"unknown adapter {unknown[0]!r}; loaded: {', '.join(self.names)} (or {BASE})")
            self._in_use.update(used)
        try:
            yield
        finally:
            with self._released:
                self._in_use.subtract(used)
                self._released.notify_all()


def load_adapter_set(adapters: dict[str, str | Path], template: str | None = None) -> AdapterSet:
    """Load the base once and every adapter on it; all must share the base model."""
    if not adapters:
        raise ConfigError("give at least one adapter (name -> run directory or adapter folder)")
    _check_names(adapters)
    sources = {name: adapter_source(path) for name, path in adapters.items()}
    _check_joins(sources)
    first = next(iter(sources.values()))
    config = first.config.model_copy(deep=True)
    if template:
        config.data.template = template
    tokenizer_dir = first.path if (first.path / "tokenizer_config.json").is_file() else resolve_model(first.base)
    loaded = load_weights(config, resolve_model(first.base), tokenizer_dir,
                          {name: s.path for name, s in sources.items()})
    install_routing(loaded.model)
    return AdapterSet(loaded, sources)


def _check_names(names, taken=()) -> None:
    for name in names:
        if name == BASE:
            raise ConfigError(f"{BASE!r} is reserved for the bare base model; name the adapter otherwise")
        if name in taken:
            raise ConfigError(f"adapter {name!r} is already loaded; remove it first or pick another name")


def _check_joins(sources: dict[str, AdapterSource]) -> None:
    bases = {s.base for s in sources.values()}
    if len(bases) > 1:
        raise ConfigError(f"adapters need one base model; these use {', '.join(sorted(bases))}")
    for name, source in sources.items():
        if source.peft_type != "LORA":
            raise ConfigError(f"adapter {name} ({source.path}) is {source.peft_type}; an adapter set "
                              "holds LoRA adapters (each request picks one)")
