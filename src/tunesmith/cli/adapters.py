"""`tunesmith adapters merge`: combine trained adapters into a new one."""

from __future__ import annotations

from pathlib import Path

import typer

from tunesmith.cli.output import check_output
from tunesmith.utils.progress import console

adapters_app = typer.Typer(help="Work with several adapters on one base model.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(adapters_app, name="adapters")


@adapters_app.command("merge")
def adapters_merge(
    sources: list[Path] = typer.Argument(..., help="Run directories or PEFT adapter folders."),
    out: Path = typer.Option(..., "--out", help="New run directory for the merged adapter."),
    how: str = typer.Option("linear", "--how", help="linear | cat | svd | ties | dare | dare_ties"),
    weights: str = typer.Option(None, "--weights", help="Comma-separated, one per adapter (default: equal)."),
    density: float = typer.Option(0.5, "--density", help="ties/dare: share of each update kept."),
    rank: int = typer.Option(None, "--rank", help="SVD rank of the result (default: sum of input ranks)."),
    seed: int = typer.Option(0, "--seed", help="Seed for dare's random drop."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
):
    """Merge LoRA adapters with PEFT add_weighted_adapter into a new run directory."""
    from tunesmith.adapters.merge import merge_adapters
    from tunesmith.errors import ConfigError

    check_output(out, "--out", folder=True)
    try:
        values = [float(w) for w in weights.split(",")] if weights else [1 / len(sources)] * len(sources)
    except ValueError:
        raise ConfigError(f"--weights {weights!r}: give numbers separated by commas, e.g. 0.7,0.3") from None
    path = merge_adapters(sources, values, how, out, density=density, rank=rank, seed=seed,
                          overwrite=overwrite)
    console.print(f"merged {len(sources)} adapters ({how}, weights {values}) -> {path}")
