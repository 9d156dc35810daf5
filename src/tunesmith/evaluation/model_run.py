"""One model over one eval set: generate (batched, left padding, KV cache) and/or score, then metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tunesmith.data.examples import Example
from tunesmith.inference.generate import generate_replies
from tunesmith.metrics.runner import (
    Scored,
    compute_metrics,
    needs_generation,
    needs_scoring,
)


@dataclass
class GenerationSettings:
    max_new_tokens: int = 128
    batch_size: int = 8
    on_progress: Callable[[int], None] | None = None  # called with the replies each batch finished


@dataclass
class ModelRun:
    predictions: list[str] | None
    nll: list[dict] | None
    scored: Scored
    seconds: dict = field(default_factory=dict)

    def rows(self, examples: list[Example]) -> list[dict]:
        """predictions.jsonl rows: what was asked, expected, produced, and each row's scores."""
        out = []
        for i, example in enumerate(examples):
            row = {"origin": example.origin, "prompt": example.prompt, "reference": example.reference}
            if self.predictions is not None:
                row["prediction"] = self.predictions[i]
            scores = {k: v for k, v in self.scored.rows[i].items() if k != "notes"}
            row["scores"] = scores
            if self.scored.rows[i]["notes"]:
                row["notes"] = self.scored.rows[i]["notes"]
            out.append(row)
        return out


def run_model(loaded, examples: list[Example], metrics: list[str], options: dict | None = None,
              settings: GenerationSettings | None = None) -> ModelRun:
    settings = settings or GenerationSettings()
    seconds = {}
    predictions = nll = None
    if needs_generation(metrics):
        start = time.time()
        asked = [e for e in examples if e.messages]
        replies = iter(generate_replies(loaded, [e.messages for e in asked], settings.max_new_tokens,
                                        settings.batch_size, tools=[e.tools for e in asked],
                                        on_progress=settings.on_progress))
        predictions = [next(replies) if e.messages else "" for e in examples]
        seconds["generation"] = round(time.time() - start, 2)
    if needs_scoring(metrics):
        from tunesmith.evaluation.scoring import row_nll

        start = time.time()
        nll = row_nll(loaded, examples, settings.batch_size)
        seconds["scoring"] = round(time.time() - start, 2)
    scored = compute_metrics(metrics, examples, predictions, nll, options)
    return ModelRun(predictions, nll, scored, seconds)
