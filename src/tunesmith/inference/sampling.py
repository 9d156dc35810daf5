"""How one generation request decodes: its parameters and what they become for `generate`."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 128
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()  # the reply ends before the first of these
    seed: int | None = None  # same seed, same request: same reply (temperature > 0)


def generate_kwargs(params: SamplingParams, tokenizer, stop_ids: list[int], stop_strings: list[str],
                    *cancel: threading.Event | None) -> dict:
    """Keyword arguments for `generate`: greedy search, which the seeded sampler below turns into
    sampling when temperature > 0; ends at `stop_ids`, `stop_strings` or a set `cancel` event."""
    from transformers import LogitsProcessorList, StoppingCriteriaList, TemperatureLogitsWarper, TopPLogitsWarper

    kwargs = {"max_new_tokens": params.max_new_tokens, "do_sample": False, "temperature": None, "top_p": None,
              "top_k": None, "eos_token_id": stop_ids, "pad_token_id": tokenizer.pad_token_id}
    if params.temperature > 0:
        warpers = [TemperatureLogitsWarper(params.temperature)]
        if params.top_p < 1:
            warpers.append(TopPLogitsWarper(params.top_p))
        kwargs["logits_processor"] = LogitsProcessorList([*warpers, SeededSampler(params.seed)])
    if stop_strings:
        kwargs.update(stop_strings=stop_strings, tokenizer=tokenizer)
    events = [e for e in cancel if e is not None]
    if events:
        kwargs["stopping_criteria"] = StoppingCriteriaList([Cancelled(events)])
    return kwargs


class SeededSampler:
    """A logits processor that draws the next token from the (warped) distribution with its own
    generator and leaves greedy search only that token to pick. transformers' sampling draws from
    torch's global RNG, which concurrent requests share, so a seed would not make a reply repeat."""

    def __init__(self, seed: int | None):
        import torch

        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    def __call__(self, input_ids, scores):
        import torch

        probs = torch.softmax(scores.float(), dim=-1)
        choice = torch.multinomial(probs.cpu(), 1, generator=self.generator).to(scores.device)
        return torch.full_like(scores, float("-inf")).scatter_(1, choice, 0.0)


class Cancelled:
    """A stopping criterion: every row stops once any of the events is set."""

    def __init__(self, events: list[threading.Event]):
        self.events = events

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        done = any(e.is_set() for e in self.events)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)
