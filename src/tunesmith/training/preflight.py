"""Before a run: validate its data with the run's tokenizer and estimate steps, epochs and time.

The time estimate divides trained tokens by a throughput figure measured on the reference
machine (2 shared CPU cores): SmolLM2-135M with LoRA trains at ~225 tokens/s in fp32 and
~500 tokens/s with bf16 autocast. Other models scale by parameter count (compute per token
grows with it); methods that train every weight (`Method.trains_every_weight`) are slower
than LoRA by the optimizer's extra work. Pass
a measured `tokens_per_second` for your own machine.
"""

from __future__ import annotations

import math
from pathlib import Path

from tunesmith.data.validate import Validation, validate_file
from tunesmith.methods import METHODS

REFERENCE_PARAMS = 135e6
REFERENCE_TOKENS_PER_SECOND = {"fp32": 225.0, "bf16": 500.0, "fp16": 225.0}
FULL_FINE_TUNING_SLOWDOWN = 1.5


def validate_for_config(path: str, config, fmt: str | None = None) -> Validation:
    """Validate with the tokenizer, template, system prompt and cutoff the run would use."""
    from tunesmith.models import load_tokenizer, resolve_model
    from tunesmith.tasks import TASKS

    d = config.data
    tokenizer = load_tokenizer(resolve_model(config.model.name_or_path), config.model.trust_remote_code)
    return validate_file(path, fmt or d.format, tokenizer, d.template, d.cutoff_len, d.system, columns=d.columns,
                         task=TASKS.get(config.task.name), task_config=config.task)


def estimate_run(result: Validation, config, tokens_per_second: float | None = None) -> dict:
    """Steps, epochs, tokens and wall time the config would take on this data."""
    t, d = config.train, config.data
    rows = result.valid_rows
    eval_rows = 0 if d.eval else (max(1, round(rows * d.eval_ratio)) if d.eval_ratio > 0 and rows > 1 else 0)
    train_rows = max(rows - eval_rows, 0)
    per_step = t.batch_size * t.grad_accum
    steps_per_epoch = max(1, math.ceil(train_rows / per_step))
    steps = t.max_steps if t.max_steps > 0 else math.ceil(steps_per_epoch * t.epochs)
    epochs = steps / steps_per_epoch
    tokens_per_epoch = sum(min(c, d.cutoff_len) for c in result.token_counts) * (train_rows / max(rows, 1))
    speed, basis = _speed(config, tokens_per_second)
    seconds = tokens_per_epoch * epochs / speed if speed else None
    return {
        "train_rows": train_rows, "eval_rows": eval_rows, "rows_per_step": per_step,
        "steps_per_epoch": steps_per_epoch, "steps": steps, "epochs": round(epochs, 2),
        "trained_tokens": int(tokens_per_epoch * epochs), "tokens_per_second": round(speed, 1),
        "speed_basis": basis, "estimated_seconds": round(seconds) if seconds else None,
    }


def _speed(config, measured: float | None) -> tuple[float, str]:
    if measured:
        return measured, "given"
    precision = config.train.precision if config.train.precision != "auto" else "bf16"
    params = _parameters(config.model.name_or_path)
    speed = REFERENCE_TOKENS_PER_SECOND.get(precision, 225.0) * REFERENCE_PARAMS / params
    if METHODS.get(config.method.name).trains_every_weight:
        speed /= FULL_FINE_TUNING_SLOWDOWN
    return speed, (f"reference {REFERENCE_TOKENS_PER_SECOND.get(precision, 225.0):.0f} tok/s for a 135M model "
                   f"with LoRA ({precision}) on 2 CPU cores, scaled to {params / 1e6:.0f}M parameters")


def _parameters(name_or_path: str) -> float:
    """Parameter count from the weight files (fp32 bytes / 4), else the reference size."""
    try:
        from tunesmith.models import resolve_model

        folder = Path(resolve_model(name_or_path))
        size = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
        return size / 4 if size else REFERENCE_PARAMS
    except Exception:  # an estimate must not fail because the model is not pulled yet
        return REFERENCE_PARAMS
