"""The `tunesmith` command: parses arguments and calls the library. No logic lives here."""

from __future__ import annotations

import sys
import warnings

import click
import typer

from tunesmith.cli import adapters as adapters_commands
from tunesmith.cli import catalog, evaluate, run_commands, runs, sweep
from tunesmith.cli import data as data_commands
from tunesmith.cli import estimate as estimate_command
from tunesmith.cli import export as export_commands
from tunesmith.cli import methods as methods_commands
from tunesmith.cli import predict as predict_command
from tunesmith.cli import registry as registry_commands
from tunesmith.cli import serve as serve_command
from tunesmith.errors import TunesmithError
from tunesmith.utils.progress import console

app = typer.Typer(
    help="Fine-tune a pretrained language model into a specialist, on your own machine. "
    "Add --debug to any command to see tracebacks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
run_commands.register(app)
catalog.register(app)
sweep.register(app)
runs.register(app)
evaluate.register(app)
data_commands.register(app)
methods_commands.register(app)
adapters_commands.register(app)
predict_command.register(app)
export_commands.register(app)
estimate_command.register(app)
registry_commands.register(app)
serve_command.register(app)


def run(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one line and exit 2; --debug shows the traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation chatter
    try:
        code = app(args=args, standalone_mode=False)
    except click.exceptions.UsageError as err:
        console.print(f"[red]error:[/] {err.format_message()}", highlight=False)
        sys.exit(2)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        console.print("interrupted; finished work is kept (training: resume with --resume)")
        sys.exit(130)
    except TunesmithError as err:
        if debug:
            raise
        console.print(f"[red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    run()
