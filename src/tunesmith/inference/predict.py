"""`predict`: run a finished run's task over new rows and write one prediction per line.

Tasks with a `predict` hook (classification, QA, preference, ...) answer in their own terms;
chat tasks (sft) generate replies. When the rows carry references, the task's scores are
computed too and written beside the predictions as <output>.metrics.json.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tunesmith.data.load import load_records
from tunesmith.data.records import require_rows
from tunesmith.errors import ConfigError
from tunesmith.inference.load import load_for_inference
from tunesmith.tasks import TASKS
from tunesmith.utils.io import write_json, write_jsonl


@dataclass
class PredictResult:
    rows: int
    output: Path
    metrics: dict = field(default_factory=dict)
    metrics_path: Path | None = None


def predict_file(run_or_model: str, input_path: str, output_path: str, batch_size: int = 16,
                 max_new_tokens: int = 256, on_progress: Callable[[int], None] | None = None,
                 trust_remote_code: bool = False) -> PredictResult:
    """`on_progress(n)`: called as chat replies are generated (n: replies just finished)."""
    loaded = load_for_inference(run_or_model, trust_remote_code=trust_remote_code)
    config = loaded.config
    task = TASKS.get(config.task.name)
    if task.predict is None:
        if task.reads != "messages":
            raise ConfigError(f"task {config.task.name!r} has no predict; use `tunesmith generate` for text")
        rows, metrics = _generate(loaded, input_path, batch_size, max_new_tokens, on_progress)
    else:
        fmt = config.data.format if config.data.format != "auto" or not task.data_format else task.data_format
        records, _ = load_records([input_path], fmt, config.data.on_bad_row, columns=config.data.columns)
        rows, metrics = task.predict(loaded.model, loaded.tokenizer, require_rows(records, input_path), config,
                                     batch_size)
    write_jsonl(output_path, rows)
    result = PredictResult(len(rows), Path(output_path), metrics)
    if metrics:
        result.metrics_path = Path(output_path).with_suffix(".metrics.json")
        write_json(result.metrics_path, {"input": input_path, "run": run_or_model, "rows": len(rows), **metrics})
    return result


def _generate(loaded, input_path: str, batch_size: int, max_new_tokens: int,
              on_progress: Callable[[int], None] | None) -> tuple[list[dict], dict]:
    """Chat runs answer each row; rows with a reference reply are scored with the run's text
    metrics (eval.metrics, e.g. rouge), the same scores training logged."""
    from tunesmith.inference.batch import answer_file, prediction_rows
    from tunesmith.metrics.runner import compute_metrics, parse_metric_names, scored_on_generations

    examples, replies = answer_file(loaded, input_path, max_new_tokens, batch_size, on_progress)
    rows = prediction_rows(examples, replies)
    names = scored_on_generations(parse_metric_names(loaded.config.eval.metrics))
    scored = [(e, r) for e, r in zip(examples, replies) if e.reference is not None]
    if not names or not scored:
        return rows, {}
    result = compute_metrics(names, [e for e, _ in scored], [r for _, r in scored], None,
                             loaded.config.eval.metric_options)
    return rows, result.scores
