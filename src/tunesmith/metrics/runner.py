"""Run registered metrics over one model's outputs: corpus scores, per-row scores, directions."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from tunesmith.data.examples import Example
from tunesmith.errors import TunesmithError
from tunesmith.metrics import METRICS, MetricSpec

LOWER_IS_BETTER_KEYS = {"loss", "perplexity"}


@dataclass
class Scored:
    scores: dict[str, float] = field(default_factory=dict)  # corpus-level, flat over all metrics
    rows: list[dict] = field(default_factory=list)  # per example: {key: value, "notes": {...}}


def parse_metric_names(names: str | list[str] | None) -> list[str]:
    """'rouge, bleu' or a list -> checked registry names (unknown names get did-you-mean)."""
    if names is None:
        return []
    items = names.split(",") if isinstance(names, str) else [n for part in names for n in part.split(",")]
    parsed = [n.strip() for n in items if n.strip()]
    for name in parsed:
        METRICS.get(name)
    return list(dict.fromkeys(parsed))


def scored_on_generations(names: list[str]) -> list[str]:
    """The metrics among `names` that score generated replies (text, or a generated label)."""
    return [n for n in names if METRICS.get(n).inputs in ("text", "labels")]


def needs_generation(names: list[str]) -> bool:
    return bool(scored_on_generations(names))


def needs_scoring(names: list[str]) -> bool:
    return any(METRICS.get(n).inputs == "nll" for n in names)


def _inputs_for(spec: MetricSpec, predictions: list[str] | None, nll: list[dict] | None):
    if spec.inputs == "nll":
        return nll
    if spec.inputs == "labels":  # a generated label is its text, stripped (classification by generation)
        return [p.strip() for p in predictions]
    if spec.inputs == "text":
        return predictions
    raise TunesmithError(
        f"metric {spec.name} scores {spec.inputs!r}, which generation-based evaluation does not "
        "produce; it runs inside its task's own evaluation"
    )


def compute_metrics(names: list[str], examples: list[Example], predictions: list[str] | None,
                    nll: list[dict] | None, options: dict[str, dict] | None = None) -> Scored:
    """Every metric in `names` over the examples; a metric's options come from options[name]."""
    scored = Scored(rows=[{"notes": {}} for _ in examples])
    references = [e.reference for e in examples]
    for name in names:
        spec = METRICS.get(name)
        kwargs = dict((options or {}).get(name, {}))
        if "prompts" in inspect.signature(spec.compute).parameters:
            kwargs["prompts"] = [e.prompt for e in examples]
        preds = _inputs_for(spec, predictions, nll)
        refs = references if spec.inputs != "labels" else [r.strip() if r else r for r in references]
        result = spec.compute(preds, refs, **kwargs)
        rows = result.pop("rows", None) or _row_by_row(spec, preds, refs, kwargs)
        scored.scores.update({k: float(v) for k, v in result.items() if isinstance(v, (int, float))})
        for target, row in zip(scored.rows, rows):
            for key, value in row.items():
                if key == "note":
                    target["notes"][name] = value
                elif isinstance(value, (int, float)):
                    target[key] = float(value)
    return scored


def _row_by_row(spec: MetricSpec, preds, refs, kwargs) -> list[dict]:
    """Per-row scores for a metric that gives none: the metric on each single pair."""
    if spec.inputs == "nll":
        return [{} for _ in preds]
    rows = []
    for i, pred in enumerate(preds):
        one = {k: ([v[i]] if k == "prompts" else v) for k, v in kwargs.items()}
        try:
            result = spec.compute([pred], [refs[i]], **one)
        except TunesmithError:
            result = {}
        rows.append({k: v for k, v in result.items() if isinstance(v, (int, float))})
    return rows


def greater_is_better(key: str, names: list[str] | None = None) -> bool:
    """A score key's direction: that of the metric whose name is its longest prefix."""
    bare = key.removeprefix("eval_")
    if bare in LOWER_IS_BETTER_KEYS or bare.endswith("_failed_rows"):
        return False
    candidates = [n for n in (names or []) if bare.startswith(n) and n in METRICS]
    candidates = candidates or [n for n in METRICS.names() if bare.startswith(n)]
    if not candidates:
        return True
    return METRICS.get(max(candidates, key=len)).greater_is_better


def directions(scores: dict, names: list[str]) -> dict[str, str]:
    return {k: "higher" if greater_is_better(k, names) else "lower" for k in scores}
