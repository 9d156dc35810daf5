"""Batching for causal-LM features: right-pad ids, mask padding out of the loss."""

from __future__ import annotations

from tunesmith.data.tokenize import IGNORE


class CausalLMCollator:
    def __init__(self, tokenizer, pad_to_multiple_of: int | None = None):
        self.pad_id = tokenizer.pad_token_id
        self.multiple = pad_to_multiple_of

    def __call__(self, features: list[dict]) -> dict:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        if self.multiple:
            longest = -(-longest // self.multiple) * self.multiple
        ids, labels, mask = [], [], []
        for f in features:
            pad = longest - len(f["input_ids"])
            ids.append(list(f["input_ids"]) + [self.pad_id] * pad)
            labels.append(list(f["labels"]) + [IGNORE] * pad)
            mask.append([1] * len(f["input_ids"]) + [0] * pad)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "attention_mask": torch.tensor(mask, dtype=torch.long),
        }


def causal_lm_class():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM
