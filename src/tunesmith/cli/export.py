"""export and distill."""

from __future__ import annotations

from pathlib import Path

import typer

from tunesmith.utils.progress import console

exporters_app = typer.Typer(help="Export formats.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command(name="export")(export)
    app.command()(distill)
    app.add_typer(exporters_app, name="exporters")


def _formats() -> str:
    from tunesmith.export import EXPORTERS

    return ", ".join(EXPORTERS.names())


@exporters_app.command("list")
def exporters_list():
    """Export formats, what they support and their options."""
    from rich.table import Table

    from tunesmith.export import EXPORTERS

    table = Table(title="export formats (tunesmith export RUN --to NAME)")
    for column in ("name", "architectures", "options", "summary"):
        table.add_column(column)
    for spec in EXPORTERS:
        options = ", ".join(f"--{k.replace('_', '-')} ({f.default})" for k, f in spec.options_class.model_fields.items())
        table.add_row(spec.name, ", ".join(spec.architectures or ["any causal LM"]), options or "-", spec.summary)
    console.print(table)


def export(
    run: str = typer.Argument(..., help="Run directory (or a model name/path)."),
    to: str = typer.Option(..., "--to", help=f"Format: {_formats()} (`tunesmith exporters list`)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default RUN/exports/<format>)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output folder."),
    data: Path | None = typer.Option(None, "--data", help="Eval data for the quality delta "
                                        "(default: the run's eval set)."),
    new_tokens: int = typer.Option(32, help="Tokens generated per prompt when timing."),
    sparsity: float | None = typer.Option(None, help="pruned: share of weights to remove, in (0, 1)."),
    structure: str | None = typer.Option(None, help="pruned: unstructured, heads or channels."),
    recover_steps: int | None = typer.Option(None, help="pruned: recovery fine-tune steps (0: none)."),
    quant: str | None = typer.Option(None, help="gguf: f16 or q8_0."),
    opset: int | None = typer.Option(None, help="onnx: ONNX opset version."),
):
    """Export a run to a deployable format, with a report of size, speed and quality."""
    from tunesmith.export.pipeline import run_export

    options = {"sparsity": sparsity, "structure": structure, "recover_steps": recover_steps,
               "quant": quant, "opset": opset}
    report = run_export(run, to, str(out) if out else None, overwrite=overwrite, options=options,
                        data=str(data) if data else None, new_tokens=new_tokens)
    e, q = report["export"], report["quality"]
    delta = "n/a" if q["delta"] is None else f"{q['delta']:+.4f}"
    console.print(f"{report['size_bytes'] / 1e6:.1f} MB ({report['size_vs_source']:.2f}x fp32), load "
                  f"{e['load_s']:.2f}s, p50 {e['latency_p50_s']:.3f}s, {e['tokens_per_s']:.1f} tok/s, "
                  f"eval loss delta {delta} -> {report['output']}/export_report.json")


def distill(
    teacher: str = typer.Option(..., "--teacher", help="Teacher run directory or model."),
    student: str = typer.Option(..., "--student", help="Student model name/path, or a run config YAML."),
    data: list[Path] = typer.Option(..., "--data", help="Training data file(s)."),
    out: Path | None = typer.Option(None, "--out", help="Run directory (default runs/distill-<student>)."),
    alpha: float = typer.Option(0.5, help="Weight of the KL term; 1-alpha weighs cross-entropy."),
    temperature: float = typer.Option(2.0, help="Softmax temperature for teacher and student logits."),
    overrides: list[str] | None = typer.Argument(None, help="key.sub=value config overrides."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run directory."),
):
    """Distill a teacher into a student with the same vocabulary (KL + cross-entropy)."""
    from tunesmith.training.callbacks import ProgressCallback
    from tunesmith.training.distill import run_distill
    from tunesmith.utils.progress import print_event

    result = run_distill(teacher, student, [str(d) for d in data], out=str(out) if out else None,
                         alpha=alpha, temperature=temperature, overrides=overrides or [],
                         overwrite=overwrite, callbacks=[ProgressCallback()], events=print_event)
    before, after = result.eval_before.get("eval_loss"), result.eval_after.get("eval_loss")
    if before is not None and after is not None:
        console.print(f"student eval loss {before:.4f} -> {after:.4f}")
    console.print(f"run {result.status}: {result.run_dir}")
