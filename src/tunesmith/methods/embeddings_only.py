"""Train only the token embeddings (new vocabulary, a domain's terms), freeze everything else."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import MethodConfig
from tunesmith.methods import register_method


class EmbeddingsOnlyConfig(MethodConfig):
    name: Literal["embeddings-only"] = "embeddings-only"
    output_embeddings: bool = Field(
        False, description="Also train the output embeddings (the LM head) when they are not tied.")


@register_method(EmbeddingsOnlyConfig, "train only the token embeddings, freeze the rest",
                 mergeable=False, saves_adapter=False)
def apply(model, cfg: EmbeddingsOnlyConfig):
    for p in model.parameters():
        p.requires_grad_(False)
    model.get_input_embeddings().weight.requires_grad_(True)
    output = model.get_output_embeddings() if cfg.output_embeddings else None
    if output is not None:
        output.weight.requires_grad_(True)
    return model
