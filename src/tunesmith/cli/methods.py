"""`tunesmith methods list|show`: the method registry and what a method trains on a model."""

from __future__ import annotations

import typer
from rich.table import Table

from tunesmith.cli.output import JSON, listing, print_json, stdout

methods_app = typer.Typer(help="Fine-tuning methods.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(methods_app, name="methods")


@methods_app.command("list")
def methods_list(as_json: bool = JSON):
    """Registered fine-tuning methods."""
    from tunesmith.methods import METHODS

    rows = [{"name": m.name, "summary": m.summary, "mergeable": m.mergeable,
             "saves": "adapter" if m.saves_adapter else "model", "tasks": list(m.tasks)} for m in METHODS]
    if as_json:
        print_json(rows)
        return
    listing("methods", [{**r, "mergeable": "yes" if r["mergeable"] else "no", "tasks": ", ".join(r["tasks"])}
                        for r in rows], False)


@methods_app.command("show")
def methods_show(
    name: str = typer.Argument(..., help="Method name (`tunesmith methods list`)."),
    model: str = typer.Option("smollm2-135m-instruct", "--model", help="Zoo name or model directory."),
    options: list[str] | None = typer.Argument(None, help="Method options, e.g. r=8 use_dora=true"),
    task: str = typer.Option("sft", "--task", help="Task (decides the model head)."),
    as_json: bool = JSON,
):
    """A method's options and how many parameters it trains on MODEL."""
    from rich.markup import escape

    from tunesmith.config import load_config
    from tunesmith.training.footprint import method_footprint

    overrides = [f"model.name_or_path={model}", f"task.name={task}", f"method.name={name}"]
    config = load_config(None, overrides + [f"method.{o}" for o in options or []])
    fields = type(config.method).model_fields
    options = {key: getattr(config.method, key) for key in fields if key != "name"}
    f = method_footprint(config)
    if as_json:
        print_json({"method": name, "model": model, "task": task, "options": options,
                    "meanings": {k: fields[k].description or "" for k in options},
                    "trainable_params": f.trainable, "total_params": f.total})
        return
    table = Table(title=f"{name} options")
    for column in ("option", "value", "meaning"):
        table.add_column(column)
    for key, value in options.items():
        table.add_row(key, escape(repr(value)), escape(fields[key].description or ""))
    stdout.print(table)
    stdout.print(f"{name} on {model}: trainable params {f.trainable:,} of {f.total:,} "
                 f"({100 * f.share:.4f}%)", highlight=False)
