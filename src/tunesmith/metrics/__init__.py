"""Metrics: one file each, registered here by `register_metric`.

A metric's `compute(predictions, references, **options)` returns a dict of named floats
(e.g. {"rouge1": .., "rouge2": ..}). Metrics are components: tasks, evaluation and training
callbacks all look them up in METRICS. Importing this package registers every built-in metric.
A metric that can score rows one by one cheaply may add "rows": a list of per-row dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tunesmith.registry import Registry, import_submodules


@dataclass(frozen=True)
class MetricSpec:
    name: str
    summary: str
    compute: Callable[..., dict[str, float]]  # (predictions, references, **options) -> scores
    greater_is_better: bool = True
    inputs: str = "text"  # what predictions are: "text" (generated), "labels" (class ids), ...
    needs_references: bool = True  # False for checks of the output alone (format, judge)


METRICS: Registry[MetricSpec] = Registry("metric")


def register_metric(name: str, summary: str, *, greater_is_better: bool = True, inputs: str = "text",
                    needs_references: bool = True):
    """Decorator for a metric's compute function."""

    def wrap(compute: Callable) -> Callable:
        METRICS.register(MetricSpec(name, summary, compute, greater_is_better, inputs, needs_references))
        return compute

    return wrap


import_submodules(__name__, __path__)
