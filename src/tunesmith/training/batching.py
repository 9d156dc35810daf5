"""How features become batches: packed (no padding), length-grouped, or as the task collates them.

Packing applies to tasks that batch with the causal-LM collator (sft, pretrain). Two modes:
- `train.pack_length` unset: each batch of `batch_size` examples is packed into the few rows that
  cost least (data/packing.py `cheapest_rows`): the same examples per optimizer step and the
  same loss as a padded batch, with little padding and no attention wasted on over-long rows.
  Where attention runs per packed sequence (models/packed_attention.py: SDPA on the CPU), a
  row's attention costs what its sequences cost, and the batch becomes one row, no padding.
- `train.pack_length: N`: examples are binned into rows of at most N tokens (best-fit
  decreasing); `batch_size` counts rows. Fewer, fuller steps per epoch.
Either way sequences are kept apart by position_ids alone, which needs no attention_mask and no
KV cache in the forward pass (the model's `use_cache` is switched off for training).
Evaluation keeps the task's padded batches: the Trainer averages eval loss per batch weighted by
the rows in it, and packed rows would reweight it; eval loss then means the same as elsewhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tunesmith.data.packing import BatchPackingCollator, PackedCollator, pack_features
from tunesmith.errors import ConfigError
from tunesmith.models.packed_attention import use_packed_attention
from tunesmith.tasks.collate import CausalLMCollator

REAL_TOKENS = "num_real_tokens"  # a packed batch's token count, taken out before the model's forward


class RealTokenCount:
    """A packing collator whose batches also say how many real (non-padding) tokens they hold.
    Packed batches carry no attention_mask, so transformers' Trainer cannot count them: it warns
    every step and counts the padding too. TunesmithTrainer reads this number instead."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, features: list[dict]) -> dict:
        return {**self.collator(features), REAL_TOKENS: sum(len(f["input_ids"]) for f in features)}


@dataclass
class BatchingPlan:
    train: list[dict]
    eval: list[dict]
    collator: object
    mode: str  # "batch" (packed per batch), "bins", "group_by_length", "random"
    report: dict = field(default_factory=dict)
    labelled_logits_only: bool = False
    eval_collator: object = None  # None: the training collator
    packed_attention: bool = False  # attention runs per packed sequence (models/packed_attention.py)

    @property
    def packed(self) -> bool:
        return self.mode in ("batch", "bins")

    def apply(self, args, model) -> None:
        """Sampler choice on the TrainingArguments; no KV cache when sequences are packed, and
        attention that stays inside each packed sequence where the model runs SDPA on the CPU."""
        args.train_sampling_strategy = "group_by_length" if self.mode == "group_by_length" else "random"
        if self.packed and getattr(model, "config", None) is not None:
            model.config.use_cache = False
            self.packed_attention = use_packed_attention(model)
        inner = getattr(self.collator, "collator", None)
        if self.packed_attention and isinstance(inner, BatchPackingCollator):
            # Attention now costs what each sequence costs, whatever the row split, so one row
            # (no padding, the largest matmuls) is the cheapest (benchmarks/packed_rows.py).
            inner.attention_span = math.inf

    def note(self) -> str:
        if not self.packed_attention:
            return self._rows_note()
        if self.mode == "batch":
            return "packing: each batch's examples share one row (no padding); attention per packed sequence"
        return self._rows_note() + "; attention per packed sequence"

    def _rows_note(self) -> str:
        if self.mode == "batch":
            return "packing: each batch's examples share a few rows (little padding)"
        if self.mode == "bins":
            r = self.report
            return (f"packing: {r['examples']} examples in {r['packed_rows']} rows of "
                    f"{r['pack_length']} tokens ({r['fill']:.1%} full)")
        if self.mode == "group_by_length":
            return "batches grouped by length (less padding)"
        return "batches padded to their longest example"


def is_causal_lm_collator(collator_factory) -> bool:
    return isinstance(collator_factory, type) and issubclass(collator_factory, CausalLMCollator)


def plan_batching(config, task, tokenizer, train: list[dict], evals: list[dict],
                  attention_span: float = 3000.0) -> BatchingPlan:
    """Choose packing / grouping for this task and config, and pack the features if asked.
    `attention_span`: see data/packing.py `cheapest_rows` (speed.attention_span(model))."""
    t = config.train
    if not is_causal_lm_collator(task.collator):
        if t.pack_length:
            raise ConfigError(
                f"train.pack_length: task {task.name!r} does not batch causal-LM rows, so it cannot "
                "be packed; remove train.pack_length"
            )
        mode = "group_by_length" if t.group_by_length else "random"
        return BatchingPlan(train, evals, task.collator(tokenizer), mode)
    if not t.packing:
        mode = "group_by_length" if t.group_by_length else "random"
        return BatchingPlan(train, evals, task.collator(tokenizer), mode)
    if t.pack_length is None:
        return BatchingPlan(train, evals, RealTokenCount(BatchPackingCollator(tokenizer, attention_span)), "batch",
                            eval_collator=task.collator(tokenizer))
    if t.pack_length < config.data.cutoff_len:
        raise ConfigError(
            f"train.pack_length={t.pack_length} is shorter than data.cutoff_len="
            f"{config.data.cutoff_len}; a row may not fit. Set pack_length >= cutoff_len"
        )
    packed, report = pack_features(train, t.pack_length)
    return BatchingPlan(packed, evals, RealTokenCount(PackedCollator(tokenizer)), "bins", report.as_dict(),
                        eval_collator=task.collator(tokenizer))
