"""Fine-tuning methods: one file each, registered here by `register_method`.

A method is a config class (documented fields, defaults from the papers or PEFT) and an
`apply(model, cfg)` that returns the model with exactly the parameters to train set
`requires_grad`. Importing this package registers every built-in method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tunesmith.config.components import METHOD_CONFIGS, MethodConfig
from tunesmith.registry import Registry, import_submodules


@dataclass(frozen=True)
class MethodSpec:
    name: str
    summary: str
    config_class: type[MethodConfig]
    apply: Callable  # (model, cfg) -> trainable model
    mergeable: bool  # can the trained weights be folded into the base model?
    saves_adapter: bool  # True: run/adapter (PEFT); False: run/model (full weights)
    tasks: tuple[str, ...] = ("sft", "pretrain")


METHODS: Registry[MethodSpec] = Registry("method")


def register_method(config_class: type[MethodConfig], summary: str, *, mergeable: bool,
                    saves_adapter: bool, tasks: tuple[str, ...] = ("sft", "pretrain")):
    """Decorator for a method's `apply`; the config's `name` default is the method's name."""
    name = config_class.model_fields["name"].default

    def wrap(apply: Callable) -> Callable:
        METHOD_CONFIGS.add(name, config_class)
        METHODS.add(name, MethodSpec(name, summary, config_class, apply, mergeable, saves_adapter, tasks))
        return apply

    return wrap


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


import_submodules(__name__, __path__)  # every module in this package registers itself
