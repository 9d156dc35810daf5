"""Forgetting: a general set scored by the base model and by the tuned run; what got worse."""

from __future__ import annotations

import gc

from tunesmith.data.examples import load_examples
from tunesmith.errors import RunDirError
from tunesmith.evaluation import charts
from tunesmith.evaluation.model_run import run_model
from tunesmith.evaluation.report_html import esc
from tunesmith.metrics import METRICS
from tunesmith.metrics.runner import directions, greater_is_better
from tunesmith.runs.rundir import RunDir


def forgetting_metrics(metrics: list[str], examples) -> list[str]:
    """Perplexity always; the requested metrics too when the general set can feed them."""
    has_refs = all(e.reference is not None for e in examples)
    has_chats = any(e.messages for e in examples)
    chosen = ["perplexity"]
    for name in metrics:
        spec = METRICS.get(name)
        if spec.inputs == "nll" or (spec.needs_references and not has_refs) or not has_chats:
            continue
        chosen.append(name)
    return list(dict.fromkeys(chosen))


def forgetting_scores(target: str, tuned, general: str, metrics: list[str], options, settings) -> dict:
    if not RunDir.is_run(target):
        raise RunDirError(f"--forgetting needs a run directory (to know its base model); {target} is not one")
    from tunesmith.inference.load import load_for_inference

    examples = load_examples(general)
    names = forgetting_metrics(metrics, examples)
    after = run_model(tuned, examples, names, options, settings).scored.scores
    base = load_for_inference(tuned.config.model.name_or_path, template=tuned.config.data.template)
    before = run_model(base, examples, names, options, settings).scored.scores
    del base
    gc.collect()
    change = {k: after[k] - before[k] for k in after if k in before}
    worse = {k: v for k, v in change.items() if (v < 0) == greater_is_better(k, names) and v != 0}
    return {"data": general, "rows": len(examples), "metrics": names, "before": before, "after": after,
            "change": change, "worse": sorted(worse)}


def forgetting_section(target: str, tuned, request, label: str) -> dict:
    result = forgetting_scores(target, tuned, request.forgetting, request.metrics, request.options, request.settings)
    png = request.output / "charts" / "forgetting.png"
    series = {"base (before)": result["before"], f"{label} (after)": result["after"]}
    dirs = directions(result["after"], result["metrics"])
    drawn = charts.score_panels(series, list(result["after"]), png, f"general set {request.forgetting}", dirs)
    lost = ", ".join(result["worse"]) or "nothing measured"
    intro = (f"<p>The general set <code>{esc(result['data'])}</code> ({result['rows']} rows) scored by the base "
             f"model before tuning and by {esc(label)} after. Got worse: <b>{esc(lost)}</b>.</p>")
    return {"id": f"forgetting:{label}", "title": f"Forgetting: {label}", "intro_html": intro,
            "scores": series, "directions": dirs, "charts": [{"title": "Before vs after on the general set",
                                          "path": "charts/forgetting.png"}] if drawn else [], "data": result}
