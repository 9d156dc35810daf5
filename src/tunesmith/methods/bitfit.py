"""BitFit (Ben Zaken et al. 2022): train only biases, here together with the normalisation
weights, since llama-style models have no biases and their norms are the analogous small set."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import MethodConfig
from tunesmith.errors import ConfigError
from tunesmith.methods import Method, register_method


class BitFitConfig(MethodConfig):
    name: Literal["bitfit"] = "bitfit"
    biases: bool = Field(True, description="Train every bias.")
    norms: bool = Field(True, description="Train the weights of normalisation layers (LayerNorm, RMSNorm).")


def _norm_parameter_names(model) -> set[str]:
    names = set()
    for module_name, module in model.named_modules():
        if "norm" in type(module).__name__.lower():
            names |= {f"{module_name}.{n}" if module_name else n for n, _ in module.named_parameters(recurse=False)}
    return names


@register_method
class BitFit(Method):
    config_class = BitFitConfig
    summary = "train only biases and norm weights, freeze the rest (BitFit)"
    mergeable, saves_adapter = False, False

    def apply(self, model, cfg: BitFitConfig):
        norms = _norm_parameter_names(model) if cfg.norms else set()
        chosen = 0
        for name, p in model.named_parameters():
            train = (cfg.biases and name.endswith(".bias")) or name in norms
            p.requires_grad_(train)
            chosen += train
        if chosen == 0:
            raise ConfigError(
                f"method bitfit: this {model.config.model_type} model has no "
                f"{'bias' if cfg.biases else ''}{' or ' if cfg.biases and cfg.norms else ''}"
                f"{'norm' if cfg.norms else ''} parameters; set method.biases/method.norms to true")
        return model
