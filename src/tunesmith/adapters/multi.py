"""Several PEFT adapters on one base model, loaded once; each call picks its adapter.

    adapters = load_adapter_set({"legal": "runs/legal", "medical": "runs/medical"})
    adapters.reply("legal", [[{"role": "user", "content": "..."}]])
    with adapters.using("medical"):
        logits = adapters.model(**batch).logits
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tunesmith.adapters.sources import AdapterSource, adapter_source
from tunesmith.data.templates import get_template
from tunesmith.errors import ConfigError
from tunesmith.inference.load import Loaded
from tunesmith.models import load_model, load_tokenizer, resolve_model
from tunesmith.tasks import TASKS

BASE = "base"  # pseudo adapter name: the base model with every adapter switched off


@dataclass
class AdapterSet:
    loaded: Loaded  # model is a PeftModel holding every adapter
    sources: dict[str, AdapterSource]

    @property
    def model(self):
        return self.loaded.model

    @property
    def names(self) -> list[str]:
        return list(self.sources)

    @contextmanager
    def using(self, name: str):
        """Run the body with adapter `name` active (or `base`), then restore the previous one."""
        if name != BASE and name not in self.sources:
            raise ConfigError(f"unknown adapter {name!r}; loaded: {', '.join(self.names)} (or {BASE})")
        previous = self.model.active_adapter
        if name == BASE:
            with self.model.disable_adapter():
                yield self.model
            return
        self.model.set_adapter(name)
        try:
            yield self.model
        finally:
            self.model.set_adapter(previous)

    def reply(self, name: str, conversations: list[list[dict]], **kwargs) -> list[str]:
        from tunesmith.inference.generate import generate_replies

        with self.using(name):
            return generate_replies(self.loaded, conversations, **kwargs)


def load_adapter_set(adapters: dict[str, str | Path], template: str | None = None) -> AdapterSet:
    """Load the base once and every adapter on it; all must share the base model."""
    from peft import PeftModel

    if not adapters:
        raise ConfigError("give at least one adapter (name -> run directory or adapter folder)")
    if BASE in adapters:
        raise ConfigError(f"{BASE!r} is reserved for the bare base model; name the adapter otherwise")
    sources = {name: adapter_source(path) for name, path in adapters.items()}
    first = next(iter(sources.values()))
    bases = {s.base for s in sources.values()}
    if len(bases) > 1:
        raise ConfigError(f"adapters need one base model; these use {', '.join(sorted(bases))}")
    config = first.config.model_copy(deep=True)
    if template:
        config.data.template = template
    base = load_model(resolve_model(first.base), TASKS.get(config.task.name).model_class(),
                      config.model.trust_remote_code)
    names = iter(sources.items())
    name, source = next(names)
    model = PeftModel.from_pretrained(base, source.path, adapter_name=name)
    for name, source in names:
        try:
            model.load_adapter(source.path, adapter_name=name)
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"adapter {name} ({source.path}) cannot join the others: {err}") from None
    model.set_adapter(next(iter(sources)))
    tokenizer = load_tokenizer(first.path if (first.path / "tokenizer_config.json").is_file()
                               else resolve_model(first.base))
    loaded = Loaded(model.eval(), tokenizer, get_template(config.data.template, tokenizer), config)
    return AdapterSet(loaded, sources)
