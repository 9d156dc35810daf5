"""split: train/eval/test by ratio, stratified by a label, grouped by a key (no group
straddles splits) or by time (train before eval before test). Seeded and reproducible.

In a run pipeline the step tags each row with `_split`; training uses the train rows,
evaluation the eval rows and the test rows are held out (counted in data_report.json).
Written here rather than with scikit-learn's splitters because those split two ways and
GroupShuffleSplit sizes splits by groups, not rows; this gives three-way splits with
exact per-label counts and group-aware row targets.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime
from typing import Literal

from pydantic import Field, field_validator

from tunesmith.config.pipeline import StepOptions
from tunesmith.data.fields import get_field
from tunesmith.data.records import ORIGIN
from tunesmith.data.steps import Step, register_step
from tunesmith.errors import DataError

NAMES = ("train", "eval", "test")


class SplitOptions(StepOptions):
    step: Literal["split"] = "split"
    ratios: list[float] = Field([0.7, 0.1, 0.2], description="Shares of train, eval and test; floats "
                                "summing to 1, or 'a:b:c' proportions like 7:1:2.")
    stratify: str | None = Field(None, description="Label field: each split gets the same label mix.")
    group: str | None = Field(None, description="Key field (e.g. patient_id): all rows of a group "
                              "land in one split.")
    time: str | None = Field(None, description="Date field: oldest rows train, then eval, newest test.")
    seed: int | None = Field(None, description="Shuffle seed (default: the run's train.seed, else 42).")

    @field_validator("ratios", mode="before")
    @classmethod
    def _ratios(cls, v):
        return parse_ratios(v)


def parse_ratios(value) -> list[float]:
    """'7:1:2' -> proportions; a list of floats must sum to 1 (within 1e-6)."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]  # ["7:1:2"], as one repeatable command-line option gives it
    if isinstance(value, str):
        try:
            parts = [float(p) for p in value.split(":")]
        except ValueError:
            raise ValueError(f"ratios {value!r}: write them like 7:1:2 or 0.8:0.2") from None
        if any(p < 0 for p in parts) or sum(parts) <= 0:
            raise ValueError(f"ratios {value!r} must be non-negative with a positive sum")
        value = [p / sum(parts) for p in parts]
    value = [float(v) for v in value]
    if not 1 <= len(value) <= 3 or any(v < 0 for v in value):
        raise ValueError(f"ratios {value} must be 1 to 3 non-negative shares (train, eval, test)")
    if abs(sum(value) - 1) > 1e-6:
        raise ValueError(f"ratios {value} sum to {sum(value):g}, not 1; e.g. [0.7, 0.1, 0.2] or '7:1:2'")
    return value


@register_step
class Split(Step):
    Options = SplitOptions
    summary = "tag rows train/eval/test: by ratio, stratified, grouped or by time"
    example = {"ratios": [0.5, 0.5], "stratify": "label"}

    def __call__(self, rows: list[dict]) -> list[dict]:
        parts = split_rows(rows, self.options, self.seed())
        self.details = {name: len(part) for name, part in parts.items()}
        tagged = {id(r): name for name, part in parts.items() for r in part}
        return [{**r, "_split": tagged[id(r)]} for r in rows]


def split_rows(rows: list[dict], o: SplitOptions, seed: int) -> dict[str, list[dict]]:
    """Rows move in units: a group (with `group`) or a source row with its augmented
    variants, so a variant never lands in another split than its original."""
    if sum(x is not None for x in (o.stratify, o.group, o.time)) > 1:
        raise DataError("split: choose one of stratify, group or time")
    names = NAMES[: len(o.ratios)]
    rng = random.Random(seed)
    if o.group:
        return _grouped(rows, o.group, o.ratios, names, rng)
    units = list(_units(rows).values())
    if o.time:
        units.sort(key=lambda u: _date(u[0], o.time))
        return _cut(units, o.ratios, names)
    if o.stratify:
        by_label: dict[str, list[list[dict]]] = defaultdict(list)
        for unit in units:
            by_label[str(get_field(unit[0], o.stratify))].append(unit)
        out: dict[str, list[dict]] = {n: [] for n in names}
        for label in sorted(by_label):
            part = by_label[label]
            rng.shuffle(part)
            for name, chunk in _cut(part, o.ratios, names).items():
                out[name] += chunk
        return out
    rng.shuffle(units)
    return _cut(units, o.ratios, names)


def _units(rows: list[dict]) -> dict[str, list[dict]]:
    units: dict[str, list[dict]] = {}
    for r in rows:
        units.setdefault(r.get("_augmented_from") or r.get(ORIGIN) or str(id(r)), []).append(r)
    return units


def _cut(units: list[list[dict]], ratios: list[float], names) -> dict[str, list[dict]]:
    """Fill the splits in order with whole units up to their row targets (largest-remainder
    rounding, so with one row per unit the sizes are exact)."""
    sizes = _sizes(sum(len(u) for u in units), ratios)
    out: dict[str, list[dict]] = {n: [] for n in names}
    current = 0
    for unit in units:
        while current < len(names) - 1 and len(out[names[current]]) >= sizes[current]:
            current += 1
        out[names[current]] += unit
    return out


def _sizes(n: int, ratios: list[float]) -> list[int]:
    exact = [n * r for r in ratios]
    sizes = [int(x) for x in exact]
    for i in sorted(range(len(ratios)), key=lambda i: exact[i] - sizes[i], reverse=True)[: n - sum(sizes)]:
        sizes[i] += 1
    return sizes


def _grouped(rows, key, ratios, names, rng) -> dict[str, list[dict]]:
    """Whole groups, largest first, each to the split furthest below its row target."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[str(get_field(r, key))].append(r)
    order = sorted(groups)
    rng.shuffle(order)
    order.sort(key=lambda g: -len(groups[g]))  # stable: ties keep the seeded order
    targets = [len(rows) * r for r in ratios]
    out: dict[str, list[dict]] = {n: [] for n in names}
    for g in order:
        i = max(range(len(names)), key=lambda i: (targets[i] - len(out[names[i]])) / max(targets[i], 1e-9))
        out[names[i]] += groups[g]
    return out


def _date(row: dict, field: str):
    value = get_field(row, field)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value)
    if isinstance(value, (date, datetime)):
        return value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00").replace("/", "-")).replace(tzinfo=None)
    except ValueError:
        raise DataError(f"{row.get(ORIGIN, '?')}: field {field!r} = {value!r} is not a date "
                        "(use ISO format, e.g. 2024-03-01)") from None
