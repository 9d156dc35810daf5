"""mix: sample the training files by weight into one multi-task set (rows repeat only when a
weight asks for more rows than a file has). Rows know their file from `_origin`."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

from pydantic import Field, NonNegativeFloat

from tunesmith.config.pipeline import StepOptions
from tunesmith.data.records import ORIGIN
from tunesmith.data.steps import Step, register_step
from tunesmith.errors import DataError


class MixOptions(StepOptions):
    step: Literal["mix"] = "mix"
    weights: dict[str, NonNegativeFloat] = Field(
        description="File (path or file name) -> weight; shares of the output.")
    total: int | None = Field(None, gt=0, description="Rows out (default: the most no file needs repeats for).")
    seed: int | None = Field(None, description="Sampling seed (default: the run's train.seed, else 42).")


@register_step
class Mix(Step):
    Options = MixOptions
    summary = "sample several files by weight into one shuffled multi-task set"
    example = {"weights": {"train.jsonl": 2, "extra.jsonl": 1}}

    def __call__(self, rows: list[dict]) -> list[dict]:
        by_file: dict[str, list[dict]] = {}
        for row in rows:
            by_file.setdefault(source_file(row), []).append(row)
        pools = {name: self._pool(name, by_file) for name in self.options.weights}
        weights = self.options.weights
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise DataError("mix: weights must be non-negative with a positive sum")
        share = {k: w / sum(weights.values()) for k, w in weights.items()}
        total = self.options.total or int(min(len(pools[k]) / s for k, s in share.items() if s > 0))
        rng = random.Random(self.seed())
        out, taken = [], {}
        for name, pool in pools.items():
            n = round(total * share[name])
            repeats, rest = divmod(n, len(pool))
            out += pool * repeats + rng.sample(pool, rest)
            taken[name] = {"available": len(pool), "taken": n, "repeated": n > len(pool)}
        rng.shuffle(out)
        self.details = {"sources": taken, "not_mixed": sorted(set(by_file) - {f for p in pools.values()
                                                                             for f in {source_file(r) for r in p}})}
        return out

    @staticmethod
    def _pool(name: str, by_file: dict[str, list[dict]]) -> list[dict]:
        tail = Path(name).parts  # a config's files are resolved against its folder; the weight may name the rest
        matches = [f for f in by_file if f == name or Path(f).parts[-len(tail):] == tail]
        if len(matches) != 1:
            raise DataError(f"mix: weight for {name!r} matches {len(matches)} input files "
                            f"(inputs: {', '.join(sorted(by_file))})")
        return by_file[matches[0]]


def source_file(row: dict) -> str:
    """The file part of "file:line" / "file:row N" / "db::table:row N"."""
    return row.get(ORIGIN, "?").rsplit(":", 1)[0]
