"""`tunesmith methods list|show`: the method registry and what a method trains on a model."""

from __future__ import annotations

import typer
from rich.table import Table

from tunesmith.utils.progress import console

methods_app = typer.Typer(help="Fine-tuning methods.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(methods_app, name="methods")


@methods_app.command("list")
def methods_list():
    """Registered fine-tuning methods."""
    from tunesmith.methods import METHODS

    table = Table(title="methods")
    for column in ("name", "summary", "mergeable", "saves", "tasks"):
        table.add_column(column)
    for m in METHODS:
        table.add_row(m.name, m.summary, "yes" if m.mergeable else "no",
                      "adapter" if m.saves_adapter else "model", ", ".join(m.tasks))
    console.print(table)


@methods_app.command("show")
def methods_show(
    name: str = typer.Argument(..., help="Method name (`tunesmith methods list`)."),
    model: str = typer.Option("smollm2-135m-instruct", "--model", help="Zoo name or model directory."),
    options: list[str] | None = typer.Argument(None, help="Method options, e.g. r=8 use_dora=true"),
    task: str = typer.Option("sft", "--task", help="Task (decides the model head)."),
):
    """A method's options and how many parameters it trains on MODEL."""
    from rich.markup import escape

    from tunesmith.config import load_config
    from tunesmith.training.footprint import method_footprint

    overrides = [f"model.name_or_path={model}", f"task.name={task}", f"method.name={name}"]
    config = load_config(None, overrides + [f"method.{o}" for o in options or []])
    table = Table(title=f"{name} options")
    for column in ("option", "value", "meaning"):
        table.add_column(column)
    for key, field in type(config.method).model_fields.items():
        if key != "name":
            table.add_row(key, escape(repr(getattr(config.method, key))), escape(field.description or ""))
    console.print(table)
    f = method_footprint(config)
    console.print(f"{name} on {model}: trainable params {f.trainable:,} of {f.total:,} "
                  f"({100 * f.share:.4f}%)")
