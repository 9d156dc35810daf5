"""tunesmith predict RUN --input FILE --output FILE.jsonl"""

from __future__ import annotations

from pathlib import Path

import typer

from tunesmith.cli.output import check_output
from tunesmith.cli.run_commands import TRUST_REMOTE_CODE
from tunesmith.utils.progress import console, progress_reports


def register(app: typer.Typer) -> None:
    app.command()(predict)


def predict(
    run: str = typer.Argument(..., help="A finished run directory."),
    input: Path = typer.Option(..., "--input", help="Rows to predict (the task's columns; csv, tsv, json, jsonl)."),
    output: Path = typer.Option(..., "--output", help="Where to write one prediction per line (.jsonl)."),
    batch_size: int = typer.Option(16, help="Rows per batch."),
    max_new_tokens: int = typer.Option(256, help="Longest generated text (generation tasks)."),
    trust_remote_code: bool = TRUST_REMOTE_CODE,
):
    """Predict with a tuned run, for any task; scores too when the rows have references."""
    from tunesmith.inference.predict import predict_file

    check_output(output, "--output")
    with progress_reports("generate") as on_progress:
        result = predict_file(run, str(input), str(output), batch_size, max_new_tokens, on_progress,
                              trust_remote_code=trust_remote_code)
    console.print(f"wrote {result.rows} predictions to {result.output}")
    if result.metrics:
        shown = "  ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if isinstance(v, float))
        console.print(f"{shown} -> {result.metrics_path}", highlight=False)
