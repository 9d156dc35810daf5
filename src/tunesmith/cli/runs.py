"""`tunesmith runs list|show|compare|cancel`: tables and overlaid curves of run directories."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tunesmith.cli.output import JSON, check_output, print_json, stdout
from tunesmith.utils.progress import console

runs_app = typer.Typer(help="List, inspect and compare run directories.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")


def _num(value, fmt: str = ".4g") -> str:
    return "" if value is None else format(value, fmt)


def _cell(value: str) -> str:
    """A config value for a table: long floats shortened."""
    try:
        number = float(value)
    except ValueError:
        return value
    return format(number, ".4g") if any(c in value for c in ".e") else value


def _time(seconds) -> str:
    if seconds is None:
        return ""
    return f"{seconds / 60:.1f}m" if seconds >= 60 else f"{seconds:.0f}s"


def _expand(paths: list[Path]) -> list[Path]:
    """Run directories named, or found inside folders named (a sweep, a runs/ folder)."""
    from tunesmith.runs.reader import find_runs

    found: list[Path] = []
    for path in paths:
        found += find_runs(path)
    if not found:
        from tunesmith.errors import RunDirError

        raise RunDirError(f"no run directories in {', '.join(map(str, paths))} (a run has config.yaml and STATUS)")
    return found


@runs_app.command("list")
def list_runs(
    directory: Path = typer.Argument(Path("runs"), help="Folder to search (default runs/)."),
    sort: str = typer.Option("started", help="Sort by: started, eval_loss, name."),
    as_json: bool = JSON,
):
    """A table of every run below DIRECTORY: method, data, key metrics, time."""
    from rich.table import Table

    from tunesmith.runs.reader import summarize

    summaries = [summarize(p) for p in _expand([directory])]
    key = {"eval_loss": lambda s: (s.eval_after is None, s.eval_after or 0), "name": lambda s: str(s.path)}
    summaries.sort(key=key.get(sort, lambda s: s.started or ""))
    if as_json:
        print_json([_as_dict(s) for s in summaries])
        return
    table = Table(title=f"runs in {directory}")
    table.add_column("run", no_wrap=True)
    table.add_column("status", no_wrap=True)  # never folded into "pru…": scripts and people grep it
    for column in ("model", "method", "data (rows)", "lr", "batch", "steps",
                   "train loss", "eval loss", "time", "started"):
        table.add_column(column, overflow="fold")
    for s in summaries:
        evals = f"{_num(s.eval_before)} → {_num(s.eval_after)}" if s.eval_before is not None else _num(s.eval_after)
        table.add_row(str(s.path.relative_to(directory) if s.path != directory else s.path.name), s.status,
                      s.model, s.method, s.data + (f" ({s.rows})" if s.rows is not None else ""),
                      _num(s.learning_rate, ".3g"), s.batch, _num(s.steps, "d") if s.steps is not None else "",
                      _num(s.train_loss), evals, _time(s.seconds), (s.started or "")[5:16].replace("T", " "))
    stdout.print(table)


def _as_dict(summary) -> dict:
    from dataclasses import asdict

    return {k: v for k, v in asdict(summary).items() if k != "config"}


@runs_app.command("show")
def show(run: Path = typer.Argument(..., help="Run directory."), as_json: bool = JSON):
    """Everything about one run: settings, data, results, files and its last events."""
    from tunesmith.runs.reader import summarize
    from tunesmith.utils.io import read_jsonl

    s = summarize(run)
    if as_json:
        print_json({**_as_dict(s), "config": s.config})
        return
    t = s.config.get("train", {})
    stdout.print(f"[bold]{s.path}[/]  {s.status}")
    stdout.print(f"model {s.config['model']['name_or_path']} · method {s.method} · task "
                 f"{s.config.get('task', {}).get('name', '?')}")
    stdout.print(f"data {s.data} · {s.rows if s.rows is not None else '?'} training rows")
    stdout.print(f"train epochs {t.get('epochs')} · max_steps {t.get('max_steps')} · batch {s.batch} · "
                 f"lr {t.get('learning_rate')} ({t.get('scheduler')}) · precision {t.get('precision')}")
    evals = f"{_num(s.eval_before)} → {_num(s.eval_after)}" if s.eval_before is not None else _num(s.eval_after)
    stdout.print(f"steps {s.steps} · time {_time(s.seconds)} · last train loss {_num(s.train_loss)} · "
                 f"eval loss {evals or 'none'}")
    for key, value in s.final_metrics.items():
        if key != "eval_loss":
            stdout.print(f"  {key} {_num(value)}")
    artifacts = [p.name for p in (s.path / "adapter", s.path / "model", s.path / "tensorboard",
                                  s.path / "plots", s.path / "mlflow.json") if p.exists()]
    stdout.print(f"files {', '.join(artifacts) or 'none yet'}")
    events = read_jsonl(s.path / "events.jsonl") if (s.path / "events.jsonl").is_file() else []
    for e in events[-6:]:
        stdout.print(f"  {e['time'].replace('T', ' ')} {e['event']}: {e['message']}", highlight=False, markup=False)


@runs_app.command("compare")
def compare(
    runs: list[Path] = typer.Argument(..., help="Run directories, or folders holding runs (a sweep)."),
    metric: Optional[list[str]] = typer.Option(None, "--metric", help="Curves to draw (default: loss, eval_*)."),
    x: str = typer.Option("step", "--x", help="Horizontal axis: step or epoch."),
    output: Path = typer.Option(Path("compare.png"), "--output", "-o", help="PNG to write."),
):
    """Runs side by side: the config keys that differ, key metrics, and overlaid curves (PNG)."""
    from rich.table import Table

    from tunesmith.runs.compare_plot import plot_compare
    from tunesmith.runs.listing import compare as compare_runs

    check_output(output, "--output")
    paths = _expand(runs)
    found = compare_runs(paths)
    differing, extra = found["differing"], found["metrics"]
    table = Table(title="runs compared")
    table.add_column("run", no_wrap=True)
    table.add_column("status", no_wrap=True)
    forgetting = any(r["forgetting"] for r in found["runs"])
    for column in [*differing, "steps", "train loss", "eval loss", *extra,
                   *(["backward transfer", "forward gain"] if forgetting else []), "time"]:
        table.add_column(column, overflow="fold")
    for r in found["runs"]:
        lost = r["forgetting"] or {}
        table.add_row(r["name"], r["status"], *[_cell(r["config"][k]) for k in differing],
                      _num(r["steps"], "d") if r["steps"] else "", _num(r["train_loss"]),
                      _num(r["eval_loss"]) + (" ★" if r["best"] else ""),
                      *[_num(r["metrics"][k]) for k in extra],
                      *([_num(lost.get("backward_transfer")), _num(lost.get("forward_gain"))] if forgetting else []),
                      _time(r["seconds"]))
    stdout.print(table)
    if not differing:
        console.print("the runs' configs are identical (apart from output)")
    png, drawn = plot_compare(paths, output, metric or None, x)
    console.print(f"curves ({', '.join(drawn)}) -> {png}")


@runs_app.command("lineage")
def lineage(run: Path = typer.Argument(..., help="Run directory."), as_json: bool = JSON):
    """The chain of runs RUN continues (model.from_run), oldest first: data hash and figures of each
    (--json for the full paths)."""
    from rich.table import Table

    from tunesmith.runs.lineage import lineage as chain_of

    steps = chain_of(run)
    if as_json:
        print_json(steps)
        return
    table = Table(title=f"lineage of {run}")
    table.add_column("#")
    table.add_column("run", no_wrap=True)
    table.add_column("data", overflow="fold")
    table.add_column("data hash", no_wrap=True)
    for column in ("method", "regulariser", "eval loss", "backward transfer", "forward gain"):
        table.add_column(column, overflow="fold")
    for i, step in enumerate(steps, 1):
        f = step.get("forgetting") or {}
        evals = f"{_num(step['eval_loss_before'])} → {_num(step['eval_loss_after'])}"
        table.add_row(str(i), Path(step["run"]).name, ", ".join(Path(str(d)).name for d in step["data"]),
                      step["data_hash"] or "", step["method"] or "", step["regulariser"] or "", evals,
                      _num(f.get("backward_transfer")), _num(f.get("forward_gain")))
    stdout.print(table)


@runs_app.command("cancel")
def cancel(run: Path = typer.Argument(..., help="Run directory being trained.")):
    """Stop a training after its current step, with a checkpoint (continue with train --resume)."""
    from tunesmith.runs.rundir import RunDir

    RunDir(run).request_cancel()
    console.print(f"cancel requested: {run} stops after its current step")
