"""The transformers Trainer, with one behaviour of ours."""

from __future__ import annotations

import torch
from transformers import Trainer


class TunesmithTrainer(Trainer):
    """Evaluation leaves the global RNG untouched, so dropout draws after an eval are the same
    whether or not the eval ran: a resumed run replays an uninterrupted one exactly."""

    def evaluate(self, *args, **kwargs):
        with torch.random.fork_rng(devices=[]):
            return super().evaluate(*args, **kwargs)
