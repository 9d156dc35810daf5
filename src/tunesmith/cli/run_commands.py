"""train, chat, generate, quickstart (eval lives in cli/evaluate.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from tunesmith.cli.output import check_output
from tunesmith.utils.progress import console, progress_reports

TRUST_REMOTE_CODE = typer.Option(False, "--trust-remote-code", help="Let Python code shipped in the model folder "
                                 "run; only this flag enables it, never a run's own config.yaml.")
OVERRIDES = typer.Argument(None, help="key.sub=value overrides, e.g. train.learning_rate=1e-4")


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command()(chat)
    app.command()(generate)
    app.command()(quickstart)


def train(
    config: Path = typer.Argument(..., help="Run config YAML."),
    overrides: list[str] | None = OVERRIDES,
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run directory."),
    nproc: int | None = typer.Option(None, "--nproc", min=1, help="Processes on this machine "
                                     "(train.distributed.nproc; docs/distributed.md)."),
    nnodes: int | None = typer.Option(None, "--nnodes", min=1, help="Machines taking part."),
    node_rank: int | None = typer.Option(None, "--node-rank", min=0, help="This machine's number (0 hosts --rdzv)."),
    rdzv: str | None = typer.Option(None, "--rdzv", help="HOST:PORT of node 0's rendezvous."),
    max_restarts: int | None = typer.Option(None, "--max-restarts", min=0,
                                            help="Restart the group from its last checkpoint when a process dies."),
):
    """Fine-tune a model as CONFIG says; writes a run directory."""
    from tunesmith.config import load_config

    launch_options = {"nproc": nproc, "nnodes": nnodes, "node_rank": node_rank, "rdzv": rdzv,
                      "max_restarts": max_restarts}
    extra = [f"train.distributed.{k}={v}" for k, v in launch_options.items() if v is not None]
    cfg = load_config(config, [*(overrides or []), *extra])  # validate before the heavy imports below
    if overwrite:
        cfg.output.overwrite = True
    result = _run(cfg, resume)
    if result is None:  # a node other than 0 of a multi-node run: node 0 reports
        console.print(f"node {cfg.train.distributed.node_rank} finished")
        return
    before, after = result.eval_before.get("eval_loss"), result.eval_after.get("eval_loss")
    if before is not None and after is not None:
        console.print(f"eval loss {before:.4f} -> {after:.4f}")
    scores = task_scores(result.eval_after)
    if scores:  # what the task measures besides loss (accuracy, F1, reward accuracy, ROUGE ...)
        console.print("  ".join(f"{k} {v:.4f}" for k, v in scores.items()), highlight=False)
    console.print(f"run {result.status}: {result.run_dir}")
    if result.status != "succeeded":
        raise typer.Exit(130)


def _run(cfg, resume: bool):
    if cfg.train.distributed.enabled:
        from tunesmith.training.launch import launch

        return launch(cfg, resume=resume, front_end=front_end)
    from tunesmith.training.runner import train as run_training

    callbacks, events = front_end()
    return run_training(cfg, resume=resume, callbacks=callbacks, events=events)


def front_end() -> tuple[list, object]:
    """What the terminal shows of a run: a progress bar and the run's events (rank 0 only)."""
    from tunesmith.training.callbacks import ProgressCallback
    from tunesmith.utils.progress import print_event

    return [ProgressCallback()], print_event


def task_scores(metrics: dict) -> dict:
    """Eval metrics other than loss and timing (counters such as num_input_tokens_seen aside)."""
    skip = ("eval_loss", "eval_perplexity", "epoch")
    timing = ("runtime", "per_second", "preparation_time")
    return {k.removeprefix("eval_"): v for k, v in metrics.items()
            if k.startswith("eval_") and k not in skip and not k.endswith(timing) and isinstance(v, (int, float))}


def chat(
    run_or_model: str = typer.Argument(..., help="Run directory or model name/path."),
    prompt: str | None = typer.Option(None, "--prompt", "-p", help="Answer one prompt and exit."),
    max_new_tokens: int = typer.Option(256, help="Longest reply."),
    temperature: float = typer.Option(0.0, help="0 for greedy decoding."),
    trust_remote_code: bool = TRUST_REMOTE_CODE,
):
    """Talk to a tuned run or a base model (interactive, or one shot with --prompt)."""
    from tunesmith.inference.generate import SamplingParams, stream_reply
    from tunesmith.inference.load import load_for_inference

    loaded = load_for_inference(run_or_model, trust_remote_code=trust_remote_code)
    params = SamplingParams(max_new_tokens, temperature)
    history: list[dict] = []
    while True:
        text = prompt if prompt is not None else _read_line()
        if text is None:
            return
        history.append({"role": "user", "content": text})
        pieces = []
        for piece in stream_reply(loaded, history, params):  # shown as it is generated
            typer.echo(piece, nl=False)
            pieces.append(piece)
        typer.echo()
        history.append({"role": "assistant", "content": "".join(pieces)})
        if prompt is not None:
            return


def _read_line() -> str | None:
    try:
        line = input("you> ").strip()
    except EOFError:
        return None
    return None if line in ("/exit", "/quit") else line


def generate(
    run_or_model: str = typer.Argument(..., help="Run directory or model name/path."),
    input: Path = typer.Option(..., "--input", help="Rows to answer (any supported format)."),
    output: Path = typer.Option(..., "--output", help="Where to write predictions (.jsonl)."),
    max_new_tokens: int = typer.Option(256, help="Longest reply."),
    batch_size: int = typer.Option(8, help="Prompts per batch."),
    trust_remote_code: bool = TRUST_REMOTE_CODE,
):
    """Answer every row of --input; writes {prompt, reference, prediction} per line."""
    from tunesmith.inference.batch import generate_file

    check_output(output, "--output")
    with progress_reports("generate") as on_progress:
        count = generate_file(run_or_model, str(input), str(output), max_new_tokens, batch_size, on_progress,
                              trust_remote_code=trust_remote_code)
    console.print(f"wrote {count} predictions to {output}")


def quickstart(
    config: Path = typer.Option(Path("examples/quickstart.yaml"), help="Quickstart config."),
    overrides: list[str] | None = OVERRIDES,
):
    """Teach smollm2 a new identity in a few minutes; prints before and after."""
    from tunesmith.quickstart import run_quickstart

    run_quickstart(config, overrides or [])
