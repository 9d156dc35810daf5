"""Evaluate one or more models on one eval set and write predictions, report.json and report.html."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path

from tunesmith.data.examples import Example, load_examples
from tunesmith.evaluation import charts
from tunesmith.evaluation.model_run import GenerationSettings, ModelRun, run_model
from tunesmith.evaluation.report_html import write_report
from tunesmith.metrics import METRICS
from tunesmith.metrics.runner import directions, parse_metric_names
from tunesmith.metrics.text_utils import MetricInputError
from tunesmith.utils.io import write_jsonl
from tunesmith.utils.progress import say

MAX_EXAMPLES_SHOWN = 60


@dataclass
class EvalRequest:
    targets: list[str]  # run directories or model names/paths
    data: str
    metrics: list[str]
    output: Path
    labels: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)  # metric name -> its options
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    template: str | None = None  # chat template for plain models (runs use their own)
    limit: int | None = None  # evaluate only the first N rows
    robustness: bool = False
    synonyms: str | None = None  # a JSON {word: [synonyms]} file for the synonym perturbation
    forgetting: str | None = None  # a general set scored before (base) and after (run)


def model_labels(targets: list[str], labels: list[str]) -> list[str]:
    """Readable, unique names: given labels, else the run folder or model name."""
    if labels and len(labels) != len(targets):
        raise MetricInputError(f"--labels gives {len(labels)} names for {len(targets)} models")
    names = labels or [Path(t).name or t for t in targets]
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def check_references(metrics: list[str], examples: list[Example], data: str) -> None:
    """Fail before any generation when a metric needs references the file does not have."""
    missing = [e.origin for e in examples if e.reference is None]
    needing = [m for m in metrics if METRICS.get(m).needs_references]
    if missing and needing:
        raise MetricInputError(
            f"{', '.join(needing)} need a reference reply per row, but {len(missing)} rows of {data} have "
            f"none (first: {missing[0]}); add an assistant reply to each row or drop those metrics"
        )


def run_evaluation(request: EvalRequest) -> dict:
    metrics = request.metrics = parse_metric_names(request.metrics) or ["perplexity"]
    examples = load_examples(request.data, limit=request.limit)
    check_references(metrics, examples, request.data)
    labels = model_labels(request.targets, request.labels)
    runs: dict[str, ModelRun] = {}
    sections: list[dict] = []
    for target, label in zip(request.targets, labels):
        say(f"[bold]evaluating[/] {label} on {request.data} ({len(examples)} rows): {', '.join(metrics)}")
        loaded = _load(target, request.template)
        runs[label] = run_model(loaded, examples, metrics, request.options, request.settings)
        sections += _extra_checks(request, target, label, loaded, examples, metrics, runs[label])
        del loaded
        gc.collect()
    return _write(request, metrics, examples, runs, sections)


def _load(target: str, template: str | None):
    from tunesmith.inference.load import load_for_inference

    return load_for_inference(target, template=template)


def _extra_checks(request, target, label, loaded, examples, metrics, run) -> list[dict]:
    sections = []
    if request.robustness:
        from tunesmith.evaluation.robustness import robustness_section

        sections.append(robustness_section(loaded, examples, metrics, run, request, label))
    if request.forgetting:
        from tunesmith.evaluation.forgetting import forgetting_section

        sections.append(forgetting_section(target, loaded, request, label))
    return sections


def _write(request: EvalRequest, metrics, examples, runs: dict[str, ModelRun], sections) -> dict:
    out = request.output
    scores = {label: run.scored.scores for label, run in runs.items()}
    keys = list(dict.fromkeys(k for s in scores.values() for k in s))
    dirs = directions(dict.fromkeys(keys), metrics)
    for label, run in runs.items():
        name = "predictions.jsonl" if len(runs) == 1 else f"predictions/{_safe(label)}.jsonl"
        write_jsonl(out / name, run.rows(examples))
    chart_list = _charts(out, scores, runs, keys, dirs)
    shown, title, note = _examples(examples, runs, keys, dirs)
    report = {
        "title": f"tunesmith {'comparison' if len(runs) > 1 else 'evaluation'}: {', '.join(runs)}",
        "models": list(runs), "targets": dict(zip(runs, request.targets)), "data": request.data,
        "rows": len(examples), "metrics": metrics, "scores": scores, "directions": dirs,
        "metric_options": request.options, "seconds": {k: r.seconds for k, r in runs.items()},
        "meta": {"data": request.data, "rows": len(examples), "metrics": ", ".join(metrics),
                 **{f"model {k}": v for k, v in zip(runs, request.targets)},
                 "max new tokens": request.settings.max_new_tokens},
        "charts": chart_list, "sections": sections,
        "examples_title": title, "examples_note": note, "examples": shown,
    }
    if len(runs) == 1 and "perplexity" in metrics:  # the keys `tunesmith eval` has always reported
        only, run = next(iter(scores.values())), next(iter(runs.values()))
        report.update(model=request.targets[0], tokens=sum(r["tokens"] for r in run.nll),
                      eval_loss=only["loss"], eval_perplexity=only["perplexity"])
    write_report(report, out)
    report["report_path"] = str(out / "report.html")
    return report


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def _charts(out: Path, scores, runs, keys, dirs) -> list[dict]:
    found = []
    png = charts.score_panels(scores, keys, out / "charts" / "scores.png", "scores by model", dirs)
    if png:
        found.append({"title": "Corpus-level scores (one panel per score)", "path": "charts/scores.png"})
    row_keys = [k for k in keys if k not in ("loss",)]
    per_rows = {label: [{k: v for k, v in r.items() if k != "notes"} for r in run.scored.rows]
                for label, run in runs.items()}
    png = charts.row_histograms(per_rows, row_keys, out / "charts" / "per_row.png")
    if png:
        found.append({"title": "Per-row score distributions", "path": "charts/per_row.png"})
    return found


def _examples(examples, runs: dict[str, ModelRun], keys, dirs) -> tuple[list[dict], str, str]:
    """Single model: worst rows first. Several: rows where the outputs disagree, largest gap first."""
    per_row = [k for k in keys if k != "loss" and any(k in r for run in runs.values() for r in run.scored.rows)]
    # Outputs differ in what was generated, so a generation score ranks rows before perplexity does.
    primary = next((k for k in per_row if k != "perplexity"), per_row[0] if per_row else None)
    rows = []
    for i, example in enumerate(examples):
        preds = {m: (run.predictions[i] if run.predictions else "") for m, run in runs.items()}
        row_scores = {m: {k: v for k, v in run.scored.rows[i].items() if k != "notes"} for m, run in runs.items()}
        notes = {m: "; ".join(f"{k}: {v}" for k, v in run.scored.rows[i]["notes"].items())
                 for m, run in runs.items() if run.scored.rows[i]["notes"]}
        values = [s[primary] for s in row_scores.values() if primary in s] if primary else []
        rows.append({"origin": example.origin, "prompt": example.prompt, "reference": example.reference,
                     "predictions": preds, "scores": row_scores, "notes": notes,
                     "_gap": max(values) - min(values) if values else 0.0, "_value": values[0] if values else 0.0})
    rows_all = list(rows)
    if len(runs) == 1:
        rows.sort(key=lambda r: r["_value"], reverse=primary is not None and dirs.get(primary) == "lower")
        title, note = "Examples", f"Worst rows first by {primary}." if primary else ""
    else:
        differ = [r for r in rows if len({" ".join(p.split()) for p in r["predictions"].values()}) > 1]
        rows = sorted(differ, key=lambda r: r["_gap"], reverse=True)
        title = "Per-example differences"
        note = (f"{len(differ)} of {len(examples)} rows where the models' outputs differ"
                + (f", largest {primary} gap first. " if primary else ". ") + _wins(rows_all, primary, dirs))
    for r in rows:
        r.pop("_gap"), r.pop("_value")
    return rows[:MAX_EXAMPLES_SHOWN], title, note


def _wins(rows: list[dict], primary: str | None, dirs: dict) -> str:
    """'Rows won on rougeL: base 1, tuned 5, tied 0' over all rows, not only the differing ones."""
    if not primary:
        return ""
    pick = max if dirs.get(primary, "higher") == "higher" else min
    counts: dict[str, int] = dict.fromkeys(rows[0]["scores"], 0) if rows else {}
    ties = 0
    for row in rows:
        values = {m: s[primary] for m, s in row["scores"].items() if primary in s}
        if not values:
            continue
        best = pick(values.values())
        winners = [m for m, v in values.items() if v == best]
        if len(winners) == 1:
            counts[winners[0]] += 1
        else:
            ties += 1
    return f"Rows won on {primary}: " + ", ".join(f"{m} {n}" for m, n in counts.items()) + f", tied {ties}."
