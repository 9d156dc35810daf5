"""`tunesmith estimate CONFIG`: what a run will cost, measured on this machine."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tunesmith.cli.output import stdout


def register(app: typer.Typer) -> None:
    app.command()(estimate)


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "unknown"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def estimate(
    config: Path = typer.Argument(..., help="Run config YAML."),
    overrides: list[str] | None = typer.Argument(None, help="key.sub=value overrides"),
    steps: int = typer.Option(4, "--steps", help="Warm-up optimizer steps (at least 3; the first is not timed)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
):
    """Tokens, steps, peak memory and time for CONFIG, from a short measured warm-up (a few real steps
    in a throwaway folder, one checkpoint and one evaluation included)."""
    from rich.table import Table

    from tunesmith.config import load_config
    from tunesmith.training.estimate import estimate as run_estimate

    cfg = load_config(config, overrides or [])
    result = run_estimate(cfg, warmup_steps=steps)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=1))
        return
    table = Table(title=f"estimate for {config}", show_header=False)
    rows = [
        ("examples", f"{result.examples:,} ({result.rows_after_batching:,} rows, batching: {result.batching})"),
        ("real tokens / epoch", f"{result.real_tokens:,} ({result.trainable_tokens:,} trained)"),
        ("optimizer steps", f"{result.total_steps:,} ({result.steps_per_epoch:,} per epoch)"),
        ("precision", result.precision),
        ("measured speed", f"{result.real_tokens_per_second:,.0f} real tokens/s over {result.warmup_steps - 1} steps"),
        ("setup", _duration(result.setup_seconds)),
        ("training time", _duration(result.train_seconds)),
        ("evaluation time", f"{_duration(result.eval_seconds)} ({result.evaluations} evaluations)"),
        ("checkpoint time", f"{_duration(result.checkpoint_seconds)} ({result.checkpoints} checkpoints)"),
        ("total time", _duration(result.total_seconds)),
        ("peak memory", f"{result.peak_memory_mb:,.0f} MB ({result.memory_kind}, during the warm-up)"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    stdout.print(table)
