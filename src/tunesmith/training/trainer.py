"""The transformers Trainer, with one behaviour of ours."""

from __future__ import annotations

import torch
from transformers import Trainer


class TunesmithTrainer(Trainer):
    """Evaluation leaves the global RNG untouched, so dropout draws after an eval are the same
    whether or not the eval ran: a resumed run replays an uninterrupted one exactly.

    `make_optimizer(model, optimizer_cls, optimizer_kwargs, args)`: a method's own optimizer
    (LoRA+ parameter groups), built from the optimizer class and settings the arguments chose."""

    def __init__(self, *args, make_optimizer=None, **kwargs):
        self.make_optimizer = make_optimizer
        super().__init__(*args, **kwargs)

    def create_optimizer(self, model=None):
        if self.make_optimizer is None or self.optimizer is not None:
            return super().create_optimizer(model)
        model = self.model if model is None else model
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        self.optimizer = self.make_optimizer(model, optimizer_cls=optimizer_cls,
                                             optimizer_kwargs=optimizer_kwargs, args=self.args)
        return self.optimizer

    def evaluate(self, *args, **kwargs):
        with torch.random.fork_rng(devices=[]):
            return super().evaluate(*args, **kwargs)
