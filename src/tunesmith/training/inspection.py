"""A data file inspected before training, as one dict (POST /v1/files/{id}/inspect): its format
and task (detected, or as given), every problem with its line, the histogram of tokens per row
(with the model's tokenizer), the first rows rendered through the chat template, and
optionally the steps, time and memory a config would take on it (training/preflight.py)."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from tunesmith.data.formats import FORMATS, detect_format
from tunesmith.data.load import row_to_record
from tunesmith.data.readers import Unreadable, read_rows
from tunesmith.data.records import RowError
from tunesmith.data.templates import NAMED_TEMPLATES, get_template, render_segments
from tunesmith.data.validate import Validation, _strings, validate_file
from tunesmith.errors import ConfigError

NO_TOKENIZER = ("token lengths need a tokenizer: give `model` (a zoo name or a model folder on the "
                "server) to count them; rows are previewed with the chatml template meanwhile")


def inspect_data(path: str | Path, task: str | None = None, model: str | None = None, fmt: str = "auto",
                 columns: list[str] | None = None, preview: int = 5, estimate: dict | None = None,
                 tokens_per_second: float | None = None, name: str | None = None) -> dict:
    """Everything above about `path` (shown as `name` in messages). `estimate` is a run config
    (dict) whose time and memory on this file are measured by a short warm-up, or computed from
    `tokens_per_second` when given (the fast way: no model is loaded, no step is run)."""
    from tunesmith.tasks import TASKS
    from tunesmith.tasks.detect import detect_task

    if not 0 <= preview <= 100:
        raise ConfigError(f"preview: give 0 to 100 rows (got {preview})")
    config = _config(path, estimate, model, task, fmt, columns) if estimate is not None else None
    model = model or (config.model.name_or_path if config else None)
    tokenizer = _tokenizer(model) if model else None
    d = config.data if config else None
    spec = TASKS.get(task) if task else (TASKS.get(config.task.name) if config else detect_task(path, fmt, columns))
    result = validate_file(path, fmt, tokenizer, d.template if d else "auto", d.cutoff_len if d else 1024,
                           d.system if d else None, columns=columns, task=spec,
                           task_config=config.task if config and config.task.name == spec.name else (
                               spec.config_class() if spec else None))
    notes = [] if tokenizer is not None else [NO_TOKENIZER]
    answer = {"format": result.format, "task": result.task, "rows": result.rows, "valid_rows": result.valid_rows,
              "problems": [_problem(p, name) for p in result.problems],
              "token_lengths": _histogram(result) if tokenizer is not None else None,
              "preview": _preview(path, result.format, columns, preview, tokenizer, d),
              "estimate": None, "notes": notes}
    if config is not None:
        from tunesmith.training.preflight import estimate_run

        answer["estimate"] = estimate_run(result, config, tokens_per_second) if result.valid_rows else None
        if answer["estimate"] is None:
            notes.append("no valid rows: nothing to estimate")
    return answer


def _config(path, estimate: dict, model, task, fmt, columns):
    from tunesmith.config import validate_config

    if not isinstance(estimate, dict):
        raise ConfigError("estimate: give a run config as a JSON object (the keys of config.yaml), or null")
    data = {**estimate, "data": {**estimate.get("data", {}), "train": [str(path)]}}
    if model:
        data["model"] = {**data.get("model", {}), "name_or_path": model}
    if task:
        data["task"] = {**data.get("task", {}), "name": task} if isinstance(data.get("task"), dict) else task
    if fmt != "auto":
        data["data"]["format"] = fmt
    if columns:
        data["data"]["columns"] = columns
    return validate_config(data, "estimate")


def _tokenizer(model: str):
    from tunesmith.models import load_tokenizer, resolve_model

    return load_tokenizer(resolve_model(model))


def _line(origin: str) -> int | None:
    tail = origin.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _problem(p, name: str | None) -> dict:
    return {"line": _line(p.origin), "key": None, "message": p.reason, "severity": p.severity,
            "origin": f"{name}:{_line(p.origin)}" if name and _line(p.origin) else p.origin}


def _histogram(result: Validation, bins: int = 20) -> dict:
    counts = np.array(result.token_counts or [0])
    values, edges = np.histogram(counts, bins=min(bins, max(1, len(set(counts.tolist())))))
    return {"edges": [float(e) for e in edges], "counts": [int(v) for v in values],
            "p50": float(np.percentile(counts, 50)), "p95": float(np.percentile(counts, 95)),
            "max": int(counts.max()), "cutoff": result.cutoff, "over_cutoff": int((counts > result.cutoff).sum())}


def _preview(path, fmt: str | None, columns, limit: int, tokenizer, data_config) -> list[dict]:
    """The first `limit` rows the format reads, rendered as training renders them: the text and
    its segments, each marked trainable (the loss goes there) or not."""
    spec = FORMATS.get(fmt) if fmt else None
    template_name = data_config.template if data_config else "auto"
    if tokenizer is not None:
        template = get_template(template_name, tokenizer)
    else:  # no tokenizer: a named template (BOS and EOS left empty)
        template = NAMED_TEMPLATES.get(template_name, NAMED_TEMPLATES["chatml"])
        tokenizer = SimpleNamespace(bos_token="", eos_token="")
    shown = []
    for raw in islice((r for r in read_rows(path, errors="report", columns=columns)
                       if not isinstance(r.data, Unreadable)), limit * 4):
        found = spec or detect_format(raw.data)
        try:
            record = row_to_record(raw.data, found) if found is not None else None
        except RowError:
            record = None
        if record is None:
            continue  # listed among the problems
        if "messages" in record:
            segments = render_segments(template, tokenizer, record["messages"],
                                       data_config.system if data_config else None, record.get("tools"))
        else:
            segments = [(record["text"] if isinstance(record.get("text"), str) else _strings(record), True)]
        shown.append({"line": _line(raw.origin), "text": "".join(t for t, _ in segments),
                      "segments": [{"text": t, "trainable": trainable} for t, trainable in segments]})
        if len(shown) == limit:
            break
    return shown
