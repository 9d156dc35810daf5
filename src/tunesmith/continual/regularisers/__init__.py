"""Continual-learning regularisers: one file each, a `Regulariser` registered by `@register_regulariser`.

A regulariser sees the model as training starts from an earlier run and returns a penalty added
to the loss at every step (TunesmithTrainer.penalty). Each states its extra memory and time.
- `start(model, earlier, config, method)`: the trainable model, when the regulariser changes how
  training starts (O-LoRA: the earlier adapter folded in, a new one beside it); None: the default.
- `anchor(model, cfg, context) -> penalty(model)`: remember what to pull toward; a scalar tensor.
- `save(model, directory, earlier)`: after the method saved, adjust what was saved (O-LoRA).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from tunesmith.config.components import REGULARISER_CONFIGS, RegulariserConfig
from tunesmith.registry import Registry, import_submodules


@dataclass
class AnchorContext:
    """What a regulariser may use when it anchors: the run directory, the earlier run, and
    `old_features()`, tokenized training rows of the earlier run (computed on demand)."""

    run_dir: object
    earlier: object  # RunDir of model.from_run
    old_features: Callable[[int], list[dict]]


class Regulariser(ABC):
    config_class: ClassVar[type[RegulariserConfig]]
    summary: ClassVar[str]
    memory: ClassVar[str]  # extra memory, stated
    time: ClassVar[str]  # extra time, stated
    new_adapter: ClassVar[bool] = False  # trains a new adapter beside the earlier run's (O-LoRA)

    @property
    def name(self) -> str:
        return self.config_class.model_fields["name"].default

    def start(self, model, earlier, config, method):
        return None

    @abstractmethod
    def anchor(self, model, cfg, context: AnchorContext) -> Callable:
        """penalty(model) -> scalar tensor, zero at the starting weights."""

    def save(self, model, directory, earlier) -> None:
        return None


REGULARISERS: Registry[Regulariser] = Registry("regulariser")


def register_regulariser(cls: type[Regulariser]) -> type[Regulariser]:
    entry = cls()
    REGULARISER_CONFIGS.register(cls.config_class, entry.name)
    REGULARISERS.register(entry)
    return cls


def trainable(model) -> list[tuple[str, object]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


import_submodules(__name__, __path__)
