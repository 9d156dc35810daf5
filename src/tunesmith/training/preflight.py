"""Before a run: validate its data with the run's tokenizer and estimate steps, epochs and time.

The time comes from a short measured warm-up of the config on this data (training/estimate.py:
a few real optimizer steps, a checkpoint and an evaluation in a throwaway folder), not from a
speed figure of another machine. Pass a measured `tokens_per_second` to skip the warm-up.
"""

from __future__ import annotations

import math

from tunesmith.data.coverage import unreadable_files
from tunesmith.data.validate import Problem, Validation, validate_file


def validate_for_config(path: str, config, fmt: str | None = None) -> Validation:
    """Validate with the tokenizer, template, system prompt and cutoff the run would use."""
    from tunesmith.models import load_tokenizer, resolve_model
    from tunesmith.tasks import TASKS

    d = config.data
    tokenizer = load_tokenizer(resolve_model(config.model.name_or_path), config.model.trust_remote_code)
    result = validate_file(path, fmt or d.format, tokenizer, d.template, d.cutoff_len, d.system, columns=d.columns,
                           task=TASKS.get(config.task.name), task_config=config.task)
    for found in unreadable_files(_readable_rows(path, d.columns), tokenizer):
        result.problems.append(Problem(found.file, found.message(config.model.name_or_path), "warning"))
    return result


def _readable_rows(path: str, columns):
    """(origin, row) of each row that parses; validation has listed the others."""
    from tunesmith.data.readers import Unreadable, read_rows
    from tunesmith.errors import DataError

    try:
        for raw in read_rows(path, errors="report", columns=columns):
            if not isinstance(raw.data, Unreadable):
                yield raw.origin, raw.data
    except DataError:  # a JSON array broken part way: the rows before the break were checked
        return


def estimate_run(result: Validation, config, tokens_per_second: float | None = None) -> dict:
    """Steps, epochs, tokens and wall time the config would take on this data: measured by a
    warm-up on the validated file, or from `tokens_per_second` (training time only)."""
    if not tokens_per_second and result.valid_rows:
        return _measured(result, config)
    t, d = config.train, config.data
    rows = result.valid_rows
    eval_rows = 0 if d.eval else (max(1, round(rows * d.eval_ratio)) if d.eval_ratio > 0 and rows > 1 else 0)
    train_rows = max(rows - eval_rows, 0)
    per_step = t.batch_size * t.grad_accum
    steps_per_epoch = max(1, math.ceil(train_rows / per_step))
    steps = t.max_steps if t.max_steps > 0 else math.ceil(steps_per_epoch * t.epochs)
    epochs = steps / steps_per_epoch
    tokens_per_epoch = sum(min(c, d.cutoff_len) for c in result.token_counts) * (train_rows / max(rows, 1))
    seconds = tokens_per_epoch * epochs / tokens_per_second if tokens_per_second else None
    return {
        "train_rows": train_rows, "eval_rows": eval_rows, "rows_per_step": per_step,
        "steps_per_epoch": steps_per_epoch, "steps": steps, "epochs": round(epochs, 2),
        "trained_tokens": int(tokens_per_epoch * epochs), "tokens_per_second": round(tokens_per_second or 0, 1),
        "speed_basis": "given" if tokens_per_second else "no valid rows to measure",
        "estimated_seconds": round(seconds) if seconds is not None else None,
        "peak_memory_mb": None, "memory_kind": None,  # measured only by the warm-up
    }


def _measured(result: Validation, config) -> dict:
    from tunesmith.training.estimate import estimate

    on_file = config.model_copy(deep=True)
    on_file.data.train, on_file.data.on_bad_row = [result.path], "skip"  # validate lists the bad rows
    e = estimate(on_file)
    epochs = e.total_steps / e.steps_per_epoch
    return {
        "train_rows": e.examples, "eval_rows": e.eval_examples, "rows_per_step": e.examples_per_step,
        "steps_per_epoch": e.steps_per_epoch, "steps": e.total_steps, "epochs": round(epochs, 2),
        "trained_tokens": int(e.real_tokens * epochs), "tokens_per_second": e.real_tokens_per_second,
        "speed_basis": f"measured: {e.warmup_steps} warm-up steps of this config here; setup, {e.evaluations} "
                       f"evaluations and {e.checkpoints} checkpoints included",
        "estimated_seconds": round(e.total_seconds),
        "peak_memory_mb": round(e.peak_memory_mb, 1), "memory_kind": e.memory_kind,
    }
