"""Which adapter each row uses, per caller, on a model shared by concurrent callers.

PEFT mixes adapters in one batch through the `adapter_names` argument of its LoRA layers. Its
own way of passing it (`PeftModel.generate(adapter_names=...)`) registers hooks on the shared
layers for the length of the call, so two threads' hooks fire on each other's forwards, and
`PeftModel.generate` swaps attributes of the shared model per call. So here each LoRA layer gets
one permanent hook that passes the adapter names of the *current caller* (a ContextVar: per
thread, copied into threads a caller starts), and generation calls the transformers model inside
the PeftModel directly (the LoRA layers live in it). The active adapter is never switched.
"""

from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from contextvars import ContextVar

from tunesmith.errors import ConfigError

BASE = "base"  # pseudo adapter name: the base model with every adapter off
_PEFT_BASE = "__base__"  # PEFT's name for the same

# adapter name per row of the current forward, or one name for every row; None: not routed
_ROWS: ContextVar[list[str] | str | None] = ContextVar("tunesmith_adapter_rows", default=None)
_HOOKED: weakref.WeakSet = weakref.WeakSet()
_INSTALL = threading.Lock()
_PROMPT_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def adapter_names(model) -> list[str]:
    """The adapters a (PEFT) model holds; [] for a plain model."""
    return list(getattr(model, "peft_config", {}) or {})


def install_routing(model) -> None:
    """Give every LoRA layer of `model` the routing hook, once (layers added since get it too)."""
    from peft.tuners.lora import LoraLayer
    from peft.utils.other import AuxiliaryTrainingWrapper

    with _INSTALL:
        for module in model.modules():
            if isinstance(module, (LoraLayer, AuxiliaryTrainingWrapper)) and module not in _HOOKED:
                module.register_forward_pre_hook(_pass_adapter_names, with_kwargs=True)
                _HOOKED.add(module)


def _pass_adapter_names(module, args, kwargs):
    rows = _ROWS.get()
    if rows is None:
        return None
    if isinstance(rows, str):
        rows = [rows] * len(args[0] if args else kwargs["x"])
    return args, {**kwargs, "adapter_names": rows}


@contextmanager
def routed(model, names: list[str | None] | str | None):
    """Forwards of `model` made by this caller inside the block use adapter `names[i]` for row i
    (or `names` for every row); None or "base" is the base model. names=None changes nothing."""
    if names is None:
        yield
        return
    rows = _peft_name(names) if isinstance(names, str) else [_peft_name(n) for n in names]
    check_routable(model, {rows} if isinstance(rows, str) else set(rows))
    install_routing(model)
    token = _ROWS.set(rows)
    try:
        yield
    finally:
        _ROWS.reset(token)


def _peft_name(name: str | None) -> str:
    return _PEFT_BASE if name in (None, BASE) else name


def check_routable(model, names: set[str]) -> None:
    """Per-row adapters need LoRA adapters that the model holds (PEFT would silently skip others)."""
    held = adapter_names(model)
    unknown = sorted(names - set(held) - {_PEFT_BASE})
    if unknown:
        raise ConfigError(f"unknown adapter {unknown[0]!r}; loaded: {', '.join(held) or 'none'} (or {BASE})")
    for name in held:
        kind = model.peft_config[name].peft_type.value
        if kind != "LORA":
            raise ConfigError(f"adapter {name} is {kind}; choosing the adapter per request needs LoRA adapters")


@contextmanager
def generator_of(model):
    """The module whose `generate` to call. LoRA-style adapters live inside the transformers model,
    so call it directly; prompt-learning adapters (prefix/prompt tuning) need PeftModel.generate,
    which swaps attributes of the shared model, so those calls take turns on a per-model lock."""
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        yield model
    elif not model.active_peft_config.is_prompt_learning:
        yield model.get_base_model()
    else:
        with _INSTALL:
            lock = _PROMPT_LOCKS.setdefault(model, threading.Lock())
        with lock:
            yield model
