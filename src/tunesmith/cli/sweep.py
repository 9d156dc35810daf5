"""`tunesmith sweep`: hyperparameter search over any config key."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tunesmith.cli.output import check_output, stdout
from tunesmith.utils.progress import console


def register(app: typer.Typer) -> None:
    app.command()(sweep)


def sweep(
    config: Path = typer.Argument(..., help="Run config YAML every trial starts from."),
    overrides: Optional[list[str]] = typer.Argument(None, help="key.sub=value overrides of the config."),
    space: Path = typer.Option(..., "--space", help="Sweep file: objective, sampler, pruner, params."),
    trials: int = typer.Option(..., "--trials", help="Trials in the study (run again to resume)."),
    jobs: int = typer.Option(1, "--jobs", help="Trials run side by side (worker processes)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Sweep folder (default sweeps/<config stem>)."),
    storage: Optional[str] = typer.Option(
        None, "--storage", help="Optuna database URL shared by machines (default SQLite in the sweep folder)."),
    study_name: Optional[str] = typer.Option(None, "--study-name", help="Study name (default: folder name)."),
):
    """Search hyperparameters with Optuna (TPE/random/grid, pruning); resumable; writes best.yaml."""
    from tunesmith.sweep import open_sweep, run_sweep, write_report
    from tunesmith.sweep.report import trial_rows

    check_output(out, "--out", folder=True)
    plan = open_sweep(config, space, trials, jobs=jobs, out=out, storage=storage, study_name=study_name,
                      overrides=overrides or [])
    study = run_sweep(plan)
    summary = write_report(study, plan.directory, plan.space.objective)
    print_trials(trial_rows(study), plan.space.objective)
    best = summary["best"]
    if best:
        console.print(f"best: trial {best['trial']} {plan.space.objective}={best['value']:.6g} {best['params']}")
        console.print(f"best config: {best['config']}  (tunesmith train {best['config']})")
    else:
        console.print("[yellow]no trial completed yet[/]")
    for plot in summary["plots"]:
        console.print(f"plot: {plot}")


def print_trials(rows: list[dict], objective: str) -> None:
    from rich.table import Table

    params = list(dict.fromkeys(k for r in rows for k in r if k.startswith("param:")))
    table = Table(title="trials")
    table.add_column("#", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for column in [objective, *[p.split(".")[-1] for p in params], "note", "time"]:
        table.add_column(column)
    for r in rows:
        value = "" if r["value"] is None else f"{r['value']:.5g}"
        shown = [_fmt(r.get(p)) for p in params]
        note = f"step {r['pruned_at_step']}" if r["pruned_at_step"] is not None else ""
        if r["retry_of"] is not None:
            note = f"resumed {Path(r['run_dir'] or '').name} {note}".strip()
        seconds = "" if r["seconds"] is None else f"{r['seconds']:.0f}s"
        table.add_row(str(r["trial"]), r["state"], value, *shown, note, seconds)
    stdout.print(table)
    console.print("runs: <sweep>/trial-NNNN (tunesmith runs compare <sweep> to compare them)")


def _fmt(value) -> str:
    if value is None:
        return ""
    return f"{value:.3g}" if isinstance(value, float) else str(value)
