"""A batch of sequences decoding together over one KV cache, which new sequences can join.

transformers' `generate` runs a fixed batch from start to end; a server needs sequences that
arrive and leave at different times, each with its own adapter, sampling and stop rules. So
this is our own step loop over the model's forward pass: left padding keeps every row's newest
token in the last column, so a joining group is padded (on the left) to the batch's cache
length, or the batch to the group's, and both caches are concatenated along the batch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field


@dataclass
class CacheBatch:
    """The live batch: a DynamicCache, its attention mask and the last token of each row."""

    cache: object
    mask: object  # [rows, cache length] 1 = real token, 0 = left padding
    last: object  # [rows, 1] the token each row feeds next

    @property
    def rows(self) -> int:
        return self.mask.shape[0]


@dataclass
class Forward:
    """Calls the model; `adapters` is one PEFT adapter name per row (or None for a bare model)."""

    model: object
    peft: bool = False
    calls: int = field(default=0)

    def __call__(self, ids, mask, cache, adapters: list[str] | None, embeds=None):
        """Logits of each row's last position and the cache; `embeds` replaces `ids` when given."""
        import torch

        width = (ids if embeds is None else embeds).shape[1]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -width:]
        extra = self._adapter_kwargs(adapters) if self.peft and adapters is not None else {}
        inner = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        if _keeps_logits(type(inner)):  # only the last position's logits: a prompt's others are never read
            extra["logits_to_keep"] = 1
        self.calls += 1
        with torch.inference_mode():
            out = self.model(input_ids=ids, inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                             past_key_values=cache, use_cache=True, **extra)
        return out.logits[:, -1, :].float(), out.past_key_values

    def _adapter_kwargs(self, adapters: list[str]) -> dict:
        """Rows that all use one adapter run it as PEFT's active adapter; mixed rows go through PEFT's
        mixed-adapter batch (`adapter_names=`), which registers a hook on every LoRA layer per call."""
        first = adapters[0]
        if first == BASE_ADAPTER or any(a != first for a in adapters):
            return {"adapter_names": adapters}
        if self.model.active_adapters != [first]:
            self.model.set_adapter(first, inference_mode=True)
        return {}


BASE_ADAPTER = "__base__"  # PEFT's name for "no adapter" in a mixed batch


@functools.lru_cache(maxsize=64)
def _keeps_logits(model_class) -> bool:
    """Whether the model's forward takes `logits_to_keep` (transformers' causal LMs do)."""
    import inspect

    return "logits_to_keep" in inspect.signature(model_class.forward).parameters


def prefill(forward: Forward, prompts: list[list[int]], adapters: list[str] | None, pad_id: int,
            prefixes: list | None = None):
    """Run the prompts (left padded) through the model: (last-position logits, CacheBatch-to-be).
    `prefixes` (serving/virtual.py) gives rows a cache that starts with their virtual tokens."""
    import torch

    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    cache = growing_cache()
    if prefixes and any(p is not None for p in prefixes):
        from tunesmith.serving.virtual import prefixed_cache

        cache, before = prefixed_cache(prefixes)
        mask = torch.cat([before, mask], dim=1)
    logits, cache = forward(ids, mask, cache, adapters)
    return logits, cache, mask


def joinable(cache) -> bool:
    """Plain per-layer key/value tensors (no sliding window, no quantized cache) can be padded and joined."""
    from transformers.cache_utils import DynamicLayer

    return all(type(layer) in (DynamicLayer, _growing_layer()) for layer in getattr(cache, "layers", [None]))


def growing_cache():
    """A DynamicCache whose layers append in place (`_growing_layer`)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    cache.layer_class_to_replicate = _growing_layer()
    return cache


@functools.cache
def _growing_layer():
    """transformers' DynamicLayer concatenates each new position onto the whole cache, so a decoding
    step copies every layer's keys and values: 22% of a 16-row step of SmolLM2 here. This layer keeps
    them at the front of a buffer with room for SPARE more positions and writes new ones in place;
    whatever replaces `keys`/`values` (join, keep, batch_select_indices) is moved into a new buffer
    on the next update."""
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        SPARE = 64

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized or self.keys.numel() == 0:
                return super().update(key_states, value_states, *args, **kwargs)
            length, new = self.keys.shape[-2], key_states.shape[-2]
            if not (self._in_buffer(self.keys, self._key_buffer) and self._in_buffer(self.values, self._value_buffer)
                    and length + new <= self._key_buffer.shape[-2]):
                room = max(self.SPARE, new)
                self._key_buffer, self._value_buffer = self._grown(self.keys, room), self._grown(self.values, room)
            end = length + new
            self._key_buffer[..., length:end, :] = key_states
            self._value_buffer[..., length:end, :] = value_states
            self.keys, self.values = self._key_buffer[..., :end, :], self._value_buffer[..., :end, :]
            return self.keys, self.values

        @staticmethod
        def _grown(states, room: int):
            shape = list(states.shape)
            shape[-2] += room
            buffer = states.new_empty(shape)
            buffer[..., : states.shape[-2], :] = states
            return buffer

        @staticmethod
        def _in_buffer(states, buffer) -> bool:
            """Whether `states` is the front of `buffer` (not a tensor that replaced it)."""
            return (buffer is not None and states.data_ptr() == buffer.data_ptr()
                    and states.shape[:-2] == buffer.shape[:-2] and states.stride() == buffer.stride())

        _key_buffer = _value_buffer = None

    return GrowingLayer


def join(batch: CacheBatch | None, cache, mask, last) -> CacheBatch:
    """`batch` with the rows of (cache, mask, last) appended; the shorter side is left padded."""
    import torch

    if batch is None:
        return CacheBatch(cache, mask, last)
    width = max(batch.mask.shape[1], mask.shape[1])
    for mine, theirs in zip(batch.cache.layers, cache.layers):
        mine.keys = torch.cat([_pad_left(mine.keys, width), _pad_left(theirs.keys, width)])
        mine.values = torch.cat([_pad_left(mine.values, width), _pad_left(theirs.values, width)])
    batch.mask = torch.cat([_pad_left(batch.mask, width, dim=1), _pad_left(mask, width, dim=1)])
    batch.last = torch.cat([batch.last, last])
    return batch


def _pad_left(tensor, width: int, dim: int = -2):
    import torch

    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def keep(batch: CacheBatch, rows: list[int]) -> CacheBatch | None:
    """Only `rows` stay; columns that are padding in every remaining row are dropped."""
    import torch

    if not rows:
        return None
    index = torch.tensor(rows)
    batch.cache.batch_select_indices(index)
    batch.mask, batch.last = batch.mask[index], batch.last[index]
    start = int((batch.mask.sum(0) > 0).nonzero()[0])
    if start:
        for layer in batch.cache.layers:
            layer.keys, layer.values = layer.keys[..., start:, :], layer.values[..., start:, :]
        batch.mask = batch.mask[:, start:]
    return batch


def step(forward: Forward, batch: CacheBatch, adapters: list[str] | None):
    """One decoding step for every row: the logits of each row's next token."""
    import torch

    batch.mask = torch.cat([batch.mask, batch.mask.new_ones(batch.rows, 1)], dim=1)
    logits, batch.cache = forward(batch.last, batch.mask, batch.cache, adapters)
    return logits
