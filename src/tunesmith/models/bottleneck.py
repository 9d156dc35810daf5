"""The bottleneck adapter block (Houlsby et al. 2019): down-project, non-linearity, up-project,
plus the residual. `methods/bottleneck.py` attaches it after attention/feed-forward outputs.
A module of its own so torch is imported only when the method is used."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class Bottleneck(nn.Module):
    def __init__(self, hidden: int, size: int, activation: str):
        super().__init__()
        self.down, self.act, self.up = nn.Linear(hidden, size), ACTIVATIONS[activation](), nn.Linear(size, hidden)
        nn.init.normal_(self.down.weight, std=1e-2)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)  # starts as the identity: the base model is unchanged
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(self.act(self.down(h)))
