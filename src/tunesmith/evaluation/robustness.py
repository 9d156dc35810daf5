"""Robustness: the same eval set with perturbed prompts, and how much each score drops."""

from __future__ import annotations

from dataclasses import replace

from tunesmith.evaluation import charts
from tunesmith.evaluation.model_run import run_model
from tunesmith.evaluation.perturb import PERTURBATIONS, load_synonyms, perturb_messages
from tunesmith.evaluation.report_html import esc
from tunesmith.metrics.runner import greater_is_better


def robustness_scores(loaded, examples, metrics, clean_scores: dict, options, settings, synonyms=None) -> dict:
    """{kind: {"scores", "drop", "sample"}}; drop > 0 means worse than the clean prompts."""
    table = load_synonyms(synonyms)
    results = {}
    for kind in PERTURBATIONS:
        perturbed = [replace(e, messages=perturb_messages(e.messages, kind, i, table)) if e.messages else e
                     for i, e in enumerate(examples)]
        perturbed_run = run_model(loaded, perturbed, metrics, options, settings)
        scores = perturbed_run.scored.scores
        drop = {k: (clean_scores[k] - v) * (1 if greater_is_better(k, metrics) else -1)
                for k, v in scores.items() if k in clean_scores}
        sample = next((p.prompt for p in perturbed if p.messages), "")
        results[kind] = {"scores": scores, "drop": drop, "sample": sample,
                         "rows": perturbed_run.rows(perturbed)}  # what each perturbed prompt produced
    return results


def robustness_section(loaded, examples, metrics, clean_run, request, label) -> dict:
    results = robustness_scores(loaded, examples, metrics, clean_run.scored.scores, request.options,
                                request.settings, request.synonyms)
    out = request.output
    png = out / "charts" / f"robustness_{_safe(label)}.png"
    keys = list(clean_run.scored.scores)
    drawn = charts.score_panels({k: r["drop"] for k, r in results.items()}, keys, png,
                                f"{label}: score drop under each perturbation (positive = worse)")
    samples = "".join(f"<tr><td>{esc(k)}</td><td class='pred'>{esc(r['sample'])}</td></tr>" for k, r in results.items())
    intro = ("<p>Each perturbation rewrites the last user message of every row; the table gives the "
             "scores under it (the clean row first). Drop is clean minus perturbed, signed so that "
             "positive means worse.</p>"
             f"<table><tr><th>perturbation</th><th>first prompt, perturbed</th></tr>{samples}</table>")
    table = {"clean": clean_run.scored.scores, **{k: r["scores"] for k, r in results.items()}}
    return {"id": f"robustness:{label}", "title": f"Robustness: {label}", "intro_html": intro, "scores": table,
            "charts": [{"title": "Score drop per perturbation", "path": f"charts/{png.name}"}] if drawn else [],
            "data": results}


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
