"""models, tasks, formats and config: what tunesmith knows about (methods: cli/methods.py)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from tunesmith.utils.progress import console

models_app = typer.Typer(help="The offline model zoo.", no_args_is_help=True)
config_app = typer.Typer(help="Show, check and describe run configs.", no_args_is_help=True)
tasks_app = typer.Typer(help="Tasks.", no_args_is_help=True)
formats_app = typer.Typer(help="Data formats.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    for name, sub in [("models", models_app), ("config", config_app),
                      ("tasks", tasks_app), ("formats", formats_app)]:
        app.add_typer(sub, name=name)


def _table(title: str, columns: list[str], rows: list[list]) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*[str(x) for x in r])
    console.print(table)


@models_app.command("list")
def models_list():
    """Zoo models and whether they are installed and converted."""
    from tunesmith.models.catalog import zoo_status

    _table("offline models", ["name", "architecture", "params", "license", "status"],
           [[s["name"], s["architecture"], s["parameters"], s["license"], s["status"]] for s in zoo_status()])


@models_app.command("pull")
def models_pull(name: str = typer.Argument(..., help="Zoo model name.")):
    """Make a zoo model ready offline (converts GGUF to safetensors once)."""
    from tunesmith.models.catalog import pull

    console.print(f"{name} ready at {pull(name)}")


@models_app.command("info")
def models_info(name: str = typer.Argument(..., help="Zoo model name or model path.")):
    """Architecture, size, tokenizer and location of a model."""
    from tunesmith.models.catalog import info

    console.print_json(json.dumps(info(name)))


@tasks_app.command("list")
def tasks_list():
    """Registered tasks."""
    from tunesmith.tasks import TASKS

    _table("tasks", ["name", "summary"], [[t.name, t.summary] for t in TASKS])


@formats_app.command("list")
def formats_list():
    """Registered data formats, in auto-detection order."""
    from tunesmith.data.formats import FORMATS

    rows = sorted(FORMATS, key=lambda f: f.priority)
    _table("data formats", ["name", "kind", "rows look like"], [[f.name, f.kind, f.summary] for f in rows])


@config_app.command("show")
def config_show(config: Path, overrides: list[str] | None = typer.Argument(None)):
    """The resolved config with every default written out."""
    import yaml

    from tunesmith.config import load_config

    typer.echo(yaml.safe_dump(load_config(config, overrides or []).model_dump(mode="json"),
                              sort_keys=False, allow_unicode=True))


@config_app.command("check")
def config_check(config: Path, overrides: list[str] | None = typer.Argument(None)):
    """Validate a config without building anything."""
    from tunesmith.config import load_config

    cfg = load_config(config, overrides or [])
    console.print(f"{config}: ok ({cfg.method.name} / {cfg.task.name} on {cfg.model.name_or_path})")


@config_app.command("schema")
def config_schema():
    """JSON schema of the run config, with every registered method's and task's options."""
    from tunesmith.config.schema_doc import full_schema

    typer.echo(json.dumps(full_schema(), indent=2))
