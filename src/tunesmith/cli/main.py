"""The `tunesmith` command: parses arguments and calls the library. No logic lives here."""

from __future__ import annotations

import errno
import sys
import warnings

import typer
from rich.markup import escape
from typer._click.exceptions import NoArgsIsHelpError  # typer >= 0.29 bundles its own click

from tunesmith.cli import adapters as adapters_commands
from tunesmith.cli import catalog, evaluate, run_commands, runs, sweep
from tunesmith.cli import data as data_commands
from tunesmith.cli import estimate as estimate_command
from tunesmith.cli import export as export_commands
from tunesmith.cli import jobs as jobs_commands
from tunesmith.cli import methods as methods_commands
from tunesmith.cli import predict as predict_command
from tunesmith.cli import registry as registry_commands
from tunesmith.cli import serve as serve_command
from tunesmith.errors import TunesmithError
from tunesmith.utils.progress import RichReporter, console, use_reporter

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
jobs_commands.register(app)


def run(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one line and exit 2; --debug shows the traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation chatter
    try:
        with use_reporter(RichReporter()):  # library notes and bars show on stderr
            code = app(args=args, prog_name="tunesmith", standalone_mode=False)
    except NoArgsIsHelpError as err:  # `tunesmith` or `tunesmith data` alone: the help, as click prints it
        typer.echo(err.format_message(), err=True)
        sys.exit(2)
    except typer.TyperException as err:  # usage errors: unknown command/option, missing or bad value
        if debug:
            raise
        ctx = getattr(err, "ctx", None)
        _error(f"{err.format_message()} (see: {ctx.command_path if ctx else 'tunesmith COMMAND'} --help)")
    except (typer.Abort, KeyboardInterrupt):
        console.print("interrupted; finished work is kept (training: resume with --resume)")
        sys.exit(130)
    except TunesmithError as err:
        if debug:
            raise
        _error(str(err))
    except OSError as err:  # an output that is a folder, not writable, on a read-only disk ...
        if debug or err.errno == errno.EPIPE:
            raise
        _error(os_error_line(err))
    if isinstance(code, int) and code:
        sys.exit(code)


def _error(message: str) -> None:
    console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(2)


def os_error_line(err: OSError) -> str:
    """One line for a file the system refused: the path, the reason, and what to do."""
    reason = err.strerror or str(err).splitlines()[0]
    if err.filename is None:
        return f"{reason} (add --debug for the traceback)"
    path = err.filename if err.filename2 is None else f"{err.filename} -> {err.filename2}"
    hint = {errno.EACCES: "check its permissions or choose another path",
            errno.EPERM: "check its permissions or choose another path",
            errno.EROFS: "the disk is read-only; choose another path",
            errno.EISDIR: "it is a folder; give a file path",
            errno.ENOTDIR: "a part of the path is a file, not a folder",
            errno.EEXIST: "a file is in the way where a folder is needed",
            errno.ENOSPC: "the disk is full"}.get(err.errno, "choose another path")
    return f"{path}: {reason}; {hint}"


if __name__ == "__main__":
    run()
