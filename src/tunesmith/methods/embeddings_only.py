"""Train only the token embeddings (new vocabulary, a domain's terms), freeze everything else."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import MethodConfig
from tunesmith.methods import Method, register_method


class EmbeddingsOnlyConfig(MethodConfig):
    name: Literal["embeddings-only"] = "embeddings-only"
    output_embeddings: bool = Field(
        False, description="Also train the output embeddings (the LM head) when they are not tied.")


@register_method
class EmbeddingsOnly(Method):
    config_class = EmbeddingsOnlyConfig
    summary = "train only the token embeddings, freeze the rest"
    mergeable, saves_adapter = False, False

    def apply(self, model, cfg: EmbeddingsOnlyConfig):
        for p in model.parameters():
            p.requires_grad_(False)
        model.get_input_embeddings().weight.requires_grad_(True)
        output = model.get_output_embeddings() if cfg.output_embeddings else None
        if output is not None:
            output.weight.requires_grad_(True)
        return model
