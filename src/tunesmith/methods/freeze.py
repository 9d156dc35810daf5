"""Freeze tuning: train only the last N layers or the modules whose names match patterns."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from tunesmith.config.components import MethodConfig
from tunesmith.errors import ConfigError
from tunesmith.methods import Method, register_method


class FreezeConfig(MethodConfig):
    name: Literal["freeze"] = "freeze"
    trainable_layers: int = Field(
        2, ge=0, description="Train the last N transformer layers (0: only `patterns`)."
    )
    patterns: list[str] = Field(
        default_factory=list,
        description="Also train parameters whose names match any of these regular expressions.",
    )


@register_method
class Freeze(Method):
    config_class = FreezeConfig
    summary = "train the last N layers or named modules, freeze the rest"
    mergeable, saves_adapter = False, False

    def apply(self, model, cfg: FreezeConfig):
        layers = _layer_indices(model)
        keep = set(sorted(layers)[-cfg.trainable_layers:]) if cfg.trainable_layers else set()
        regexes = [re.compile(p) for p in cfg.patterns]
        chosen = 0
        for name, p in model.named_parameters():
            index = _layer_of(name)
            train = (index in keep) or any(r.search(name) for r in regexes)
            p.requires_grad_(train)
            chosen += train
        if chosen == 0:
            raise ConfigError(
                f"method freeze: no parameter matched (model has {len(layers)} layers; "
                f"patterns {cfg.patterns}); raise method.trainable_layers or fix method.patterns"
            )
        return model


_LAYER = re.compile(r"\.(?:layers|layer|h|blocks)\.(\d+)\.")


def _layer_of(name: str) -> int | None:
    match = _LAYER.search(name)
    return int(match.group(1)) if match else None


def _layer_indices(model) -> set[int]:
    return {i for n, _ in model.named_parameters() if (i := _layer_of(n)) is not None}
