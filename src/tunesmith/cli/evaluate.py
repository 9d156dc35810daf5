"""eval (metrics, robustness, forgetting), eval export-rating / import-rating, compare."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from typer.core import TyperGroup

from tunesmith.cli.output import JSON, check_output, listing, stdout
from tunesmith.errors import TunesmithError
from tunesmith.utils.progress import console


class DefaultRunGroup(TyperGroup):
    """`tunesmith eval RUN ...` runs the `run` subcommand; `eval export-rating` etc. stay subcommands."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


eval_app = typer.Typer(cls=DefaultRunGroup, no_args_is_help=True,
                       help="Evaluate a run or model: metrics, robustness, forgetting, human ratings.")

DATA = typer.Option(..., "--data",
                    help="Eval set (any supported format); rows' last assistant reply is the reference.")
METRICS_OPT = typer.Option(None, "--metrics",
                           help="Comma-separated metrics (`tunesmith metrics list`); default perplexity.")
METRIC_OPTION = typer.Option(None, "--metric-option",
                             help="NAME.KEY=VALUE for one metric, e.g. regex.pattern='^\\d+$', "
                             "judge.endpoint=http://127.0.0.1:8000/v1 (repeatable).")
OUTPUT = typer.Option(None, "--output", help="Report folder (default: RUN/eval, or eval/<model>).")
BATCH = typer.Option(8, "--batch-size", help="Prompts per generation/scoring batch.")
MAX_NEW = typer.Option(128, "--max-new-tokens", help="Longest generated reply.")
LIMIT = typer.Option(None, "--limit", help="Evaluate only the first N rows.")
TEMPLATE = typer.Option(None, "--template", help="Chat template for plain models (runs use their own).")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
    app.command()(compare)
    metrics_app = typer.Typer(help="Evaluation metrics.", no_args_is_help=True)
    metrics_app.command("list")(list_metrics)
    app.add_typer(metrics_app, name="metrics")


def parse_metric_options(items: list[str] | None) -> dict[str, dict]:
    options: dict[str, dict] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        name, dot, option = key.partition(".")
        if not sep or not dot or not name or not option:
            raise TunesmithError(f"--metric-option {item!r}: write NAME.KEY=VALUE, e.g. regex.pattern=^yes$")
        options.setdefault(name, {})[option] = _option_value(value)
    return options


def _option_value(value: str):
    """Numbers, booleans and inline JSON/YAML {...} or [...] are parsed; anything else stays text
    (so a regex like `Answer: yes` is not read as a mapping)."""
    try:
        parsed = yaml.safe_load(value) if value else ""
    except yaml.YAMLError:
        return value
    if isinstance(parsed, (bool, int, float)) or (isinstance(parsed, (dict, list)) and value.strip()[:1] in "{["):
        return parsed
    return value


def _default_output(target: str) -> Path:
    from tunesmith.runs.rundir import RunDir

    return Path(target) / "eval" if RunDir.is_run(target) else Path("eval") / Path(target).name


@eval_app.command("run")
def evaluate(
    run_or_model: str = typer.Argument(..., help="Run directory or model name/path."),
    data: Path = DATA, metrics: str | None = METRICS_OPT, metric_option: list[str] | None = METRIC_OPTION,
    output: Path | None = OUTPUT, batch_size: int = BATCH, max_new_tokens: int = MAX_NEW,
    limit: int | None = LIMIT, template: str | None = TEMPLATE,
    robustness: bool = typer.Option(False, "--robustness", help="Also score perturbed prompts (typos, casing, "
                                    "punctuation, whitespace, synonyms) and report the drop."),
    synonyms: Path | None = typer.Option(None, "--synonyms", help='JSON {"word": ["synonym", ...]} for --robustness.'),
    forgetting: Path | None = typer.Option(None, "--forgetting", help="General set scored by the base model and "
                                              "the run, to show what tuning cost."),
):
    """Score a run or model on --data: metrics, predictions.jsonl, report.json and report.html."""
    from tunesmith.evaluation.model_run import GenerationSettings
    from tunesmith.evaluation.report import EvalRequest

    check_output(output, "--output", folder=True)
    request = EvalRequest(
        [run_or_model], str(data), metrics or [], output or _default_output(run_or_model),
        options=parse_metric_options(metric_option), settings=GenerationSettings(max_new_tokens, batch_size),
        template=template, limit=limit, robustness=robustness, synonyms=str(synonyms) if synonyms else None,
        forgetting=str(forgetting) if forgetting else None,
    )
    report = _with_progress(request)
    _print_scores(report)
    if "eval_loss" in report:
        console.print(f"eval loss {report['eval_loss']:.4f}  perplexity {report['eval_perplexity']:.2f}  "
                      f"({report['rows']} rows, {report['tokens']} tokens) -> {report['report_path']}")
    else:
        console.print(f"report: {report['report_path']}")


def compare(
    models: list[str] = typer.Argument(..., help="Two or more run directories or model names/paths."),
    data: Path = DATA,
    metrics: str | None = typer.Option("perplexity,rouge,bleu", "--metrics", help="Comma-separated metrics."),
    metric_option: list[str] | None = METRIC_OPTION,
    labels: str | None = typer.Option(None, "--labels", help="Comma-separated display names, one per model."),
    output: Path | None = typer.Option(Path("eval/compare"), "--output", help="Report folder."),
    batch_size: int = BATCH, max_new_tokens: int = MAX_NEW, limit: int | None = LIMIT,
    template: str | None = TEMPLATE,
):
    """The same eval set through several models: side-by-side scores, charts, rows where they differ."""
    from tunesmith.evaluation.model_run import GenerationSettings
    from tunesmith.evaluation.report import EvalRequest

    if len(models) < 2:
        raise TunesmithError("compare needs at least two models (e.g. a base model and a run directory)")
    check_output(output, "--output", folder=True)
    request = EvalRequest(
        models, str(data), metrics or [], output, labels=[x.strip() for x in labels.split(",")] if labels else [],
        options=parse_metric_options(metric_option), settings=GenerationSettings(max_new_tokens, batch_size),
        template=template, limit=limit,
    )
    report = _with_progress(request)
    _print_scores(report)
    console.print(f"report: {report['report_path']}")


def _print_scores(report: dict) -> None:
    from rich.table import Table

    table = Table("score", *report["models"])
    keys = list(dict.fromkeys(k for s in report["scores"].values() for k in s))
    for key in keys:
        table.add_row(f"{key} ({report['directions'].get(key, '')})",
                      *[f"{report['scores'][m][key]:.4g}" if key in report["scores"][m] else "-"
                        for m in report["models"]])
    stdout.print(table)


def list_metrics(as_json: bool = JSON):
    """Registered metrics: name, direction, what they score."""
    from tunesmith.metrics import METRICS

    rows = [{"metric": spec.name, "better": "higher" if spec.greater_is_better else "lower",
             "needs reference": "yes" if spec.needs_references else "no", "summary": spec.summary}
            for spec in METRICS]
    listing("metrics", rows, as_json)


@eval_app.command("export-rating")
def export_rating(
    sources: list[str] = typer.Argument(..., help="predictions.jsonl files or eval/compare report folders."),
    output: Path = typer.Option(Path("rating"), "--output", help="Kit folder: rating_form.csv, rating_form.html, key."),
    max_rows: int | None = typer.Option(None, "--max-rows", help="Rate only the first N rows of each model."),
    seed: int = typer.Option(0, "--seed", help="Shuffle seed."),
    no_reference: bool = typer.Option(False, "--no-reference", help="Hide the reference answers from raters."),
):
    """A blind, shuffled human rating kit (CSV + static HTML form; relevance, fluency, domain correctness 1-5)."""
    from tunesmith.evaluation.rating import export_rating as export

    check_output(output, "--output", folder=True)
    kit = export(sources, output, seed, max_rows, not no_reference)
    console.print(f"{kit['items']} items from {', '.join(kit['systems'])} -> {output}/rating_form.csv and "
                  f"rating_form.html (keep {output}/rating_key.json away from raters)")


@eval_app.command("import-rating")
def import_rating(
    kit: Path = typer.Argument(..., help="The folder export-rating wrote (holds rating_key.json)."),
    sheets: list[Path] = typer.Argument(..., help="Filled CSVs, one per rater."),
    report: Path | None = typer.Option(None, "--report", help="Eval/compare folder whose report gains the ratings."),
):
    """Aggregate filled rating sheets: mean per model and criterion, agreement between raters."""
    from tunesmith.evaluation.rating_import import import_rating as aggregate

    result = aggregate(kit, sheets, report)
    from rich.table import Table

    table = Table("model", *result["criteria"])
    for system, means in result["means"].items():
        table.add_row(system, *[f"{means[c]:.2f}" if c in means else "-" for c in result["criteria"]])
    console.print(table)
    for c, a in result["agreement"].items():
        alpha, kappa = a["krippendorff_alpha"], a["cohen_kappa"]
        console.print(f"{c}: Krippendorff alpha {alpha if alpha is None else round(alpha, 3)}, "
                      f"Cohen kappa {kappa if kappa is None else round(kappa, 3)}")
    if "report_path" in result:
        console.print(f"report: {result['report_path']}")


def _with_progress(request) -> dict:
    from tunesmith.evaluation.report import run_evaluation
    from tunesmith.utils.progress import progress_reports

    with progress_reports("generate") as on_progress:
        request.settings.on_progress = on_progress
        return run_evaluation(request)
