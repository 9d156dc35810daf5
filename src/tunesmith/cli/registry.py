"""`tunesmith registry ...` (versions, aliases, splits, rollback) and `tunesmith ab report`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from tunesmith.utils.progress import console

registry_app = typer.Typer(help="Versions, aliases, traffic splits and rollback of served models.",
                           no_args_is_help=True)
ab_app = typer.Typer(help="A/B tests between versions of a registered model.", no_args_is_help=True)
DB = typer.Option(None, "--db", help="Database URL (default: $TUNESMITH_DB_URL, else registry.db in $TUNESMITH_HOME).")
AS_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def register(app: typer.Typer) -> None:
    app.add_typer(registry_app, name="registry")
    app.add_typer(ab_app, name="ab")


def _open(db: str | None):
    from tunesmith.serving.registry import ModelRegistry

    return ModelRegistry(db)


def _serves(state: dict) -> str:
    if "split" in state:
        return " ".join(f"v{v}={w:g}" for v, w in state["split"].items())
    return f"v{state['version']}" if state else "-"


@registry_app.command("add")
def add(name: str = typer.Argument(..., help="Model name (letters, digits, . _ -)."),
        run: Path = typer.Argument(..., help="A finished run directory."),
        note: str = typer.Option("", "--note", help="A note kept with the version."),
        promote: bool = typer.Option(False, "--promote", help="Serve the new version at once (the first always is)."),
        db: Optional[str] = DB):
    """Register RUN as the next version of NAME, with its eval figures."""
    version = _open(db).add(name, run, note=note, promote=promote)
    console.print(f"{name}@v{version} <- {run}")


@registry_app.command("alias")
def alias(reference: str = typer.Argument(..., help="NAME@ALIAS, e.g. chat@prod."),
          version: str = typer.Argument(..., help="Version number (3 or v3)."),
          db: Optional[str] = DB):
    """Point NAME@ALIAS at a version."""
    from tunesmith.serving.registry import RegistryError, parse_reference

    name, target = parse_reference(reference)
    if not target:
        raise RegistryError(f"{reference!r}: write NAME@ALIAS, e.g. {name}@prod")
    _open(db).alias(name, target, version)
    console.print(f"{name}@{target} -> v{version.lstrip('v')}")


@registry_app.command("promote")
def promote(name: str = typer.Argument(...), version: str = typer.Argument(..., help="Version number (3 or v3)."),
            db: Optional[str] = DB):
    """Serve one version of NAME to all traffic (ends a split)."""
    _open(db).promote(name, version)
    console.print(f"{name} -> v{version.lstrip('v')}")


@registry_app.command("split")
def split(name: str = typer.Argument(...),
          weights: list[str] = typer.Argument(..., help="VERSION=PERCENT pairs summing to 100, e.g. v3=90 v4=10."),
          db: Optional[str] = DB):
    """Split NAME's traffic between versions; each subject (user) keeps seeing one version."""
    from tunesmith.serving.registry import parse_split

    shares = parse_split(weights)
    _open(db).split(name, shares)
    console.print(f"{name} -> {_serves({'split': shares})}")


@registry_app.command("rollback")
def rollback(reference: str = typer.Argument(..., help="NAME or NAME@ALIAS."), db: Optional[str] = DB):
    """Go back to what NAME (or NAME@ALIAS) served before its last change; all traffic moves at once."""
    state = _open(db).rollback(reference)
    console.print(f"{reference} -> {_serves(state)}")


@registry_app.command("list")
def list_models(db: Optional[str] = DB, as_json: bool = AS_JSON):
    """Every registered name: versions, what it serves, aliases."""
    from rich.table import Table

    rows = _open(db).list()
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table(title="registered models")
    for column in ("name", "versions", "serves", "aliases"):
        table.add_column(column)
    for r in rows:
        aliases = ", ".join(f"@{a}=v{v}" for a, v in r["aliases"].items())
        table.add_row(r["name"], str(r["versions"]), _serves(r["serves"]), aliases)
    console.print(table)


@registry_app.command("show")
def show(name: str = typer.Argument(...), db: Optional[str] = DB, as_json: bool = AS_JSON):
    """Versions of NAME with their eval figures, aliases, split and history."""
    from rich.table import Table

    info = _open(db).show(name)
    if as_json:
        typer.echo(json.dumps(info, indent=1))
        return
    aliases = ", ".join(f"@{a}=v{v}" for a, v in info["aliases"].items()) or "none"
    console.print(f"{name} serves {_serves(info['serves'])}; aliases: {aliases}")
    table = Table(title=f"versions of {name}")
    for column in ("version", "run", "figures", "note", "added"):
        table.add_column(column, overflow="fold")
    for v in info["versions"]:
        figures = ", ".join(f"{k}={x:.4g}" if isinstance(x, float) else f"{k}={x}" for k, x in v["figures"].items())
        table.add_row(f"v{v['version']}", v["run_path"], figures, v["note"], v["created_at"][:16].replace("T", " "))
    console.print(table)


@ab_app.command("report")
def ab_report(name: str = typer.Argument(...),
              out: Optional[Path] = typer.Option(None, "--out", help="Folder for ab_report.json/png (default ab/NAME)"),
              db: Optional[str] = DB, as_json: bool = AS_JSON):
    """Per version: requests, errors, latency, mean feedback with 95% interval, a significance test, a verdict."""
    from rich.table import Table

    from tunesmith.serving.ab import ab_report as make_report

    report = make_report(_open(db), name, out or Path("ab") / name)
    if as_json:
        typer.echo(json.dumps(report, indent=1))
        return
    table = Table(title=f"A/B report: {name} (feedback: {report['feedback']})")
    for column in ("version", "requests", "errors", "p50 ms", "p95 ms", "feedback n", "mean", "95% interval"):
        table.add_column(column)
    for r in report["versions"]:
        table.add_row(f"v{r['version']}", str(r["requests"]), str(r["errors"]), _num(r["latency_p50_ms"]),
                      _num(r["latency_p95_ms"]), str(r["feedback"]), _num(r["mean_feedback"]),
                      "" if r["ci95"] is None else f"{r['ci95'][0]:.3g} .. {r['ci95'][1]:.3g}")
    console.print(table)
    console.print(report["verdict"])
    console.print(f"plot: {report['plot']}")


def _num(value) -> str:
    return "" if value is None else f"{value:.4g}"
