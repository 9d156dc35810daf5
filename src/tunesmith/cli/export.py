"""export and distill."""

from __future__ import annotations

from pathlib import Path

import typer

from tunesmith.cli.options import with_options
from tunesmith.cli.output import JSON, listing
from tunesmith.export import EXPORTERS
from tunesmith.utils.progress import console

exporters_app = typer.Typer(help="Export formats.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command(name="export")(export)
    app.command()(distill)
    app.add_typer(exporters_app, name="exporters")


@exporters_app.command("list")
def exporters_list(as_json: bool = JSON):
    """Export formats, what they support and their options."""
    from tunesmith.export import EXPORTERS

    rows = [{"name": spec.name, "architectures": ", ".join(spec.architectures or ["any causal LM"]),
             "options": ", ".join(f"--{k.replace('_', '-')} ({f.default})"
                                  for k, f in spec.options_class.model_fields.items()) or "-",
             "summary": spec.summary} for spec in EXPORTERS]
    listing("export formats (tunesmith export RUN --to NAME)", rows, as_json)


def _exporters_of(options_class) -> str:
    return "/".join(s.name for s in EXPORTERS if s.options_class is options_class) + ": "


@with_options(*dict.fromkeys(s.options_class for s in EXPORTERS), help_prefix=_exporters_of)
def export(
    run: str = typer.Argument(..., help="Run directory (or a model name/path)."),
    to: str = typer.Option(..., "--to", help=f"Format: {', '.join(EXPORTERS.names())} (`tunesmith exporters list`)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default RUN/exports/<format>)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output folder."),
    data: Path | None = typer.Option(None, "--data", help="Eval data for the quality delta "
                                        "(default: the run's eval set)."),
    new_tokens: int = typer.Option(32, help="Tokens generated per prompt when timing."),
    options: dict = None,
):
    """Export a run to a deployable format, with a report of size, speed and quality. Each
    format's options (`tunesmith exporters list`) are generated from its options model."""
    from tunesmith.export.pipeline import run_export

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
