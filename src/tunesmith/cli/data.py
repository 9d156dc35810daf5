"""`tunesmith data ...`: validate and convert data files, and one command per registered data
step (clean, dedup, split, mix ...). Step and template options are generated from their Options
models (cli/options.py); each command parses them and calls tunesmith.data.tools."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from tunesmith.cli.options import with_options
from tunesmith.data.convert import TARGETS
from tunesmith.data.steps import STEPS
from tunesmith.data.steps.mix import MixOptions
from tunesmith.data.steps.split import SplitOptions
from tunesmith.data.steps.template import TemplateOptions
from tunesmith.utils.progress import console

data_app = typer.Typer(help="Prepare fine-tuning data: validate, clean, dedup, decontaminate, "
                       "balance, split, convert, augment, mix.", no_args_is_help=True)

OUT = typer.Option(..., "--output", "-o", help="Output file (.jsonl, .json or .csv); written atomically.")
REPORT = typer.Option(None, "--report", help="Also write the step's full report (JSON) here.")
FIELDS = typer.Option(None, "--fields", help="Comma-separated top-level fields to use (default: all text).")
ORIGIN_OPT = typer.Option(False, "--keep-origin", help="Keep each row's source file:line as _origin.")
# Option fields whose flag would clash with a command's own: the template's `output` is the answer.
FLAGS = {"output": "--answer"}


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


def _extra(options: list[str] | None) -> dict:
    """--set key=value pairs (values parsed as YAML) for any step option without a flag."""
    from tunesmith.errors import ConfigError
    from tunesmith.utils.yaml_files import parse_yaml

    out = {}
    for item in options or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--set {item!r}: write key=value")
        out[key.strip()] = parse_yaml(value, f"--set {item}", ConfigError)
    return out


COLUMNS = typer.Option(None, "--columns", help="Comma-separated column names of header-less csv/tsv files (one "
                       "name for a .txt file); with --config, replaces its data.columns.")


def _names(columns: str | None) -> list[str] | None:
    return [c.strip() for c in columns.split(",") if c.strip()] if columns else None


SET = typer.Option(None, "--set", help="Any other step option as key=value (see `tunesmith data steps`).")


def _run(inputs: list[str], options: dict, output: Path, report: Path | None, keep_origin: bool) -> None:
    from tunesmith.data.tools import apply_step

    result = apply_step(inputs, options, output, report, keep_origin)
    console.print(f"[bold]{result.step}[/]: {result.rows_in} rows in, {result.rows_out} rows out "
                  f"-> {output} ({result.seconds:.1f}s)", highlight=False)
    _summary(result.details)


def _summary(details: dict) -> None:
    """Print the report's scalar figures; lists are in the --report JSON."""
    for key, value in details.items():
        if isinstance(value, (int, float, str)) or (isinstance(value, dict) and len(json.dumps(value)) < 200):
            console.print(f"  {key}: {value}", highlight=False)


@data_app.command("steps")
def steps_list():
    """Data steps usable in `data.pipeline` of a run config, with their options."""
    from tunesmith.data.steps import STEPS

    for step in STEPS:
        console.print(f"[bold]{step.name}[/]: {step.summary}")
        for name, f in step.Options.model_fields.items():
            if name != "step":
                default = "required" if f.is_required() else f"default {f.get_default(call_default_factory=True)!r}"
                console.print(f"    {name} ({default}): {f.description}", highlight=False, markup=False)


@data_app.command("validate")
def validate(
    file: Path = typer.Argument(..., help="Data file to check."),
    fmt: str = typer.Option("auto", "--format", "-f", help="Row format (auto-detected by default)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Run config: its model's tokenizer, "
                                          "template and cutoff count tokens, and steps/time are measured by a "
                                          "short warm-up (`tunesmith estimate`)."),
    cutoff: Optional[int] = typer.Option(None, "--cutoff", help="Longest row in tokens (default: config or 1024)."),
    histogram: Optional[Path] = typer.Option(None, "--histogram", help="Tokens-per-row histogram PNG "
                                             "(default: beside --report as <report stem>.tokens.png)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write every problem and the statistics (JSON)."),
    show: int = typer.Option(100, "--show", help="Print at most this many problems (all go to --report)."),
    strict: bool = typer.Option(False, "--strict", help="Warnings count as errors."),
    tokens_per_second: Optional[float] = typer.Option(None, "--tokens-per-second",
                                                      help="Your measured training speed: the time estimate "
                                                      "uses it instead of a warm-up."),
    task: Optional[str] = typer.Option(None, "--task", help="Check rows as this task reads them, with its default "
                                       "options (default: the config's task, else detected from the rows)."),
    columns: Optional[str] = COLUMNS,
):
    """List every problem with its line, then statistics; exit code 1 when errors are found."""
    from tunesmith.data.validate import save_outputs

    run_config = None
    names = _names(columns)
    if config:
        from tunesmith.config import load_config
        from tunesmith.training.preflight import validate_for_config

        overrides = [f"data.cutoff_len={cutoff}"] if cutoff is not None else []
        overrides += [f"data.columns={json.dumps(names)}"] if names else []
        overrides += [f"task.name={task}"] if task else []
        run_config = load_config(config, overrides)
        result = validate_for_config(str(file), run_config, None if fmt == "auto" else fmt)
    else:
        from tunesmith.tasks.detect import validate_for_task

        result = validate_for_task(file, task, fmt, 1024 if cutoff is None else cutoff, names)
    for problem in result.problems[:show]:
        color = "red" if problem.severity == "error" else "yellow"
        console.print(f"[{color}]{problem.severity}[/] {problem.origin}: {problem.reason}", highlight=False,
                      soft_wrap=True)  # one line per problem, whatever the terminal width
    if len(result.problems) > show:
        console.print(f"... and {len(result.problems) - show} more (use --report to see all)")
    _print_stats(result)
    payload = result.as_dict()
    if run_config is not None:
        from tunesmith.training.preflight import estimate_run

        payload["estimate"] = estimate_run(result, run_config, tokens_per_second)
        _print_estimate(payload["estimate"])
    png = save_outputs(result, payload, report, histogram)
    if png is not None:
        console.print(f"histogram: {png}")
    if result.errors or (strict and result.warnings):
        sys.exit(1)  # SystemExit, not typer.Exit: click returns (not raises) Exit in non-standalone mode


def _print_stats(result) -> None:
    s = result.stats()
    task = f", task {result.task}" if result.task else ", no task reads these rows (give --task or --config)"
    table = Table(title=f"{result.path} ({result.format or 'unknown format'}{task})")
    for col in ("rows", "valid", "errors", "warnings", "tokens", "median/row", "max/row", f"over {s['cutoff']}"):
        table.add_column(col)
    approx = "~" if s["tokens_estimated"] else ""
    table.add_row(str(s["rows"]), str(s["valid_rows"]), str(s["errors"]), str(s["warnings"]),
                  f"{approx}{s['total_tokens']:,}", str(s["tokens_per_row"]["median"]),
                  str(s["tokens_per_row"]["max"]), str(s["over_cutoff"]))
    console.print(table)
    if s["tokens_estimated"]:
        console.print("tokens are estimated (~4 characters or 1 CJK character each); pass --config for exact counts")


def _print_estimate(e: dict) -> None:
    minutes = f"{e['estimated_seconds'] / 60:.1f} min" if e["estimated_seconds"] is not None else "?"
    console.print(f"estimate: {e['train_rows']} train rows, {e['steps']} steps ({e['steps_per_epoch']}/epoch, "
                  f"{e['epochs']} epochs), {e['trained_tokens']:,} tokens, about {minutes} at "
                  f"{e['tokens_per_second']} tok/s ({e['speed_basis']})", highlight=False)


def _step_command(step):
    """`tunesmith data <step> IN... -o OUT [options]`: one command per registered step, its
    options generated from the step's Options model."""

    @with_options(step.Options, skip=("step",), flags=FLAGS)
    def command(
        inputs: List[str] = typer.Argument(..., help="Input files."),
        output: Path = OUT, report: Optional[Path] = REPORT, keep_origin: bool = ORIGIN_OPT,
        extra: Optional[List[str]] = SET, options: dict = None,
    ):
        _run(inputs, {"step": step.name, **options, **_extra(extra)}, output, report, keep_origin)

    return command


@data_app.command("split")
@with_options(SplitOptions, skip=("step",), flags=FLAGS)
def split(
    inputs: List[str] = typer.Argument(..., help="Input files."),
    out_dir: Path = typer.Option(..., "--output-dir", "-o", help="Folder for train/eval/test files."),
    suffix: str = typer.Option(".jsonl", "--suffix", help="Output file type: .jsonl, .json or .csv."),
    columns: Optional[str] = COLUMNS, keep_origin: bool = ORIGIN_OPT, options: dict = None,
):
    """Split into train/eval/test files: by ratio, stratified, grouped or by time."""
    from tunesmith.data.tools import split_files

    counts = split_files(inputs, options, out_dir, suffix, keep_origin, _names(columns))
    console.print(", ".join(f"{k}: {v} rows" for k, v in counts.items()) + f" -> {out_dir}")


@data_app.command("convert")
@with_options(TemplateOptions, skip=("step", "keep_fields"), flags=FLAGS)
def convert(
    inputs: List[str] = typer.Argument(..., help="Input files, or db.sqlite::table / db.sqlite::'SELECT ...'."),
    to: str = typer.Option(..., "--to", help=f"Format to write: {', '.join(TARGETS)}."),
    output: Path = OUT,
    fmt: str = typer.Option("auto", "--from", help="Input row format (auto-detected)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and list bad rows instead of stopping."),
    keep_origin: bool = ORIGIN_OPT, options: dict = None,
):
    """Convert between formats; render structured records (csv/jsonl/SQL) through templates."""
    from tunesmith.data.tools import convert_files

    result = convert_files(inputs, to, output, fmt, options or None, "skip" if skip_bad else "error", keep_origin)
    console.print(f"{result['rows_in']} rows in, {result['rows_out']} rows out -> {output}")
    for bad in result["bad_rows"][:50]:
        console.print(f"[yellow]skipped[/] {bad}", highlight=False)


@data_app.command("mix")
@with_options(MixOptions, skip=("step", "weights"), flags=FLAGS)
def mix(
    sources: List[str] = typer.Argument(..., help="FILE:WEIGHT pairs, e.g. a.jsonl:0.7 b.json:0.3."),
    output: Path = OUT, keep_origin: bool = ORIGIN_OPT, options: dict = None,
):
    """Mix datasets by weight into one shuffled file for multi-task training."""
    from tunesmith.data.tools import mix_files

    pairs = []
    for item in sources:
        path, sep, weight = item.rpartition(":")
        if not sep:
            raise typer.BadParameter(f"{item!r}: write FILE:WEIGHT")
        pairs.append((path, weight))  # the mix step checks the weights
    result = mix_files(pairs, output, options, keep_origin)
    console.print(f"{result.rows_out} rows -> {output}")
    for path, c in result.details["sources"].items():
        console.print(f"  {path}: {c['taken']} of {c['available']}{' (repeated)' if c['repeated'] else ''}")


for _step in STEPS:  # every other step: rows in, rows out
    if _step.name not in ("split", "mix"):
        data_app.command(_step.name, help=_step.summary)(_step_command(_step))
