"""models, tasks, formats and config: what tunesmith knows about (methods: cli/methods.py)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tunesmith.cli.output import JSON, listing, print_json, stdout
from tunesmith.utils.progress import console

models_app = typer.Typer(help="The offline model zoo.", no_args_is_help=True)
config_app = typer.Typer(help="Show, check and describe run configs.", no_args_is_help=True)
tasks_app = typer.Typer(help="Tasks.", no_args_is_help=True)
formats_app = typer.Typer(help="Data formats.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    for name, sub in [("models", models_app), ("config", config_app),
                      ("tasks", tasks_app), ("formats", formats_app)]:
        app.add_typer(sub, name=name)


@models_app.command("list")
def models_list(as_json: bool = JSON):
    """Zoo models and whether they are installed and converted."""
    from tunesmith.models.catalog import zoo_status

    listing("offline models", [{"name": s["name"], "architecture": s["architecture"], "params": s["parameters"],
                                "license": s["license"], "status": s["status"]} for s in zoo_status()], as_json)


@models_app.command("pull")
def models_pull(name: str = typer.Argument(..., help="Zoo model name.")):
    """Make a zoo model ready offline (converts GGUF to safetensors once)."""
    from tunesmith.models.catalog import pull

    console.print(f"{name} ready at {pull(name)}")


@models_app.command("info")
def models_info(name: str = typer.Argument(..., help="Zoo model name or model path."),
                as_json: bool = JSON):
    """Architecture, size, tokenizer and location of a model (JSON either way)."""
    from tunesmith.models.catalog import info

    if as_json:
        print_json(info(name))
    else:
        stdout.print_json(json.dumps(info(name)))


@tasks_app.command("list")
def tasks_list(as_json: bool = JSON):
    """Registered tasks."""
    from tunesmith.tasks import TASKS

    listing("tasks", [{"name": t.name, "summary": t.summary} for t in TASKS], as_json)


@formats_app.command("list")
def formats_list(as_json: bool = JSON):
    """Registered data formats, in auto-detection order."""
    from tunesmith.data.formats import FORMATS

    rows = sorted(FORMATS, key=lambda f: f.priority)
    listing("data formats", [{"name": f.name, "kind": f.kind, "rows look like": f.summary} for f in rows], as_json)


@config_app.command("show")
def config_show(config: Path, overrides: list[str] | None = typer.Argument(None), as_json: bool = JSON):
    """The resolved config with every default written out (YAML, or JSON with --json)."""
    import yaml

    from tunesmith.config import load_config

    resolved = load_config(config, overrides or []).model_dump(mode="json")
    if as_json:
        print_json(resolved)
    else:
        typer.echo(yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True))


@config_app.command("check")
def config_check(config: Path, overrides: list[str] | None = typer.Argument(None)):
    """Validate a config and check that the files it reads exist, without building anything."""
    from tunesmith.config import load_config

    cfg = load_config(config, overrides or [], check_files=True)
    console.print(f"{config}: ok ({cfg.method.name} / {cfg.task.name} on {cfg.model.name_or_path})")


@config_app.command("schema")
def config_schema():
    """JSON schema of the run config, with every registered method's and task's options."""
    from tunesmith.config.schema_doc import full_schema

    typer.echo(json.dumps(full_schema(), indent=2))
