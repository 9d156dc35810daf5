"""balance: under- or over-sample rows so labels follow a target distribution."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from typing import Annotated, Literal, Union

from pydantic import Discriminator, Field, NonNegativeFloat, Tag

from tunesmith.config.pipeline import StepOptions
from tunesmith.data.fields import get_field
from tunesmith.data.steps import Step, register_step
from tunesmith.errors import DataError

# Tagged, so a bad share is one error ("target.shares.pos: ...") instead of one per union member.
Shares = Annotated[Union[Annotated[dict[str, NonNegativeFloat], Tag("shares")],
                         Annotated[Literal["uniform"], Tag("uniform")]],
                   Discriminator(lambda v: "shares" if isinstance(v, dict) else "uniform")]


class BalanceOptions(StepOptions):
    step: Literal["balance"] = "balance"
    label: str = Field(description="Field holding the label (dotted path, e.g. label or messages.-1.content).")
    target: Shares = Field(
        "uniform", description="Share of each label in the output (normalised), or uniform.")
    mode: Literal["under", "over", "keep_size"] = Field(
        "under", description="under: drop rows of over-represented labels; over: repeat rows of "
        "under-represented ones; keep_size: same row count as the input, both ways.")
    seed: int | None = Field(None, description="Sampling seed (default: the run's train.seed, else 42).")


@register_step
class Balance(Step):
    Options = BalanceOptions
    summary = "under/over-sample rows to a target label distribution"
    example = {"label": "label", "mode": "over"}

    def __call__(self, rows: list[dict]) -> list[dict]:
        o = self.options
        by_label: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            by_label[str(get_field(row, o.label))].append(row)
        shares = self._shares(sorted(by_label))
        counts = target_counts({k: len(v) for k, v in by_label.items()}, shares, o.mode, len(rows))
        rng = random.Random(self.seed())
        out = []
        for label in sorted(by_label):
            out += _sample(by_label[label], counts[label], rng)
        rng.shuffle(out)
        self.details = {"label": o.label, "before": dict(Counter({k: len(v) for k, v in by_label.items()})),
                        "after": counts}
        return out

    def _shares(self, labels: list[str]) -> dict[str, float]:
        target = self.options.target
        if target == "uniform":
            return {k: 1 / len(labels) for k in labels}
        unknown = set(target) - set(labels)
        if unknown:
            raise DataError(f"balance: target labels {sorted(unknown)} do not occur in the data "
                            f"(labels found: {', '.join(labels)})")
        total = sum(target.values())
        if total <= 0:
            raise DataError("balance: target shares must be positive")
        return {k: target.get(k, 0.0) / total for k in labels}


def target_counts(have: dict[str, int], shares: dict[str, float], mode: str, n_rows: int) -> dict[str, int]:
    """Rows per label: `under` keeps the largest total no label needs repeats for, `over` the
    smallest total no label loses rows for, `keep_size` the input's row count."""
    live = {k: s for k, s in shares.items() if s > 0}
    if mode == "under":
        total = min(have[k] / s for k, s in live.items())
    elif mode == "over":
        total = max(have[k] / s for k, s in live.items())
    else:
        total = n_rows
    return {k: int(math.floor(shares[k] * total + 1e-9)) for k in have}


def _sample(rows: list[dict], count: int, rng: random.Random) -> list[dict]:
    if count <= len(rows):
        return rng.sample(rows, count)
    repeats, rest = divmod(count, len(rows))
    return rows * repeats + rng.sample(rows, rest)
