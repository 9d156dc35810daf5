"""tunesmith server | worker | jobs ...: the self-hosted fine-tuning API (docs/jobs.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import typer

from tunesmith.cli.output import JSON, listing, print_json
from tunesmith.utils.progress import console

jobs_app = typer.Typer(help="Fine-tuning jobs on a `tunesmith server` (OpenAI's API; docs/jobs.md).",
                       no_args_is_help=True)
DB = typer.Option(None, "--db", help="Database URL (default: $TUNESMITH_DB_URL, else SQLite under $TUNESMITH_HOME).")
STORAGE = typer.Option(None, "--storage", help="Storage root for files and runs, shared by the server and every "
                       "worker (default: $TUNESMITH_HOME/jobs).")
BASE_URL = typer.Option(None, "--base-url", help="The server's API (default: $TUNESMITH_BASE_URL, else "
                        "http://127.0.0.1:8000/v1).")
API_KEY = typer.Option(None, "--api-key", help="API key (default: $OPENAI_API_KEY).")


def register(app: typer.Typer) -> None:
    app.command()(server)
    app.command()(worker)
    app.add_typer(jobs_app, name="jobs")


def server(
    host: str = typer.Option("127.0.0.1", help="Address to listen on; beyond loopback needs API keys."),
    port: int = typer.Option(8000, help="Port to listen on."),
    db: str = DB, storage: Path = STORAGE,
    workers: int = typer.Option(1, "--workers", min=0, help="Worker processes started with the server."),
    api_key: list[str] = typer.Option(None, "--api-key", help="PROJECT:KEY a client may send (repeatable)."),
    api_keys_file: Path = typer.Option(None, "--api-keys-file", help="Lines `PROJECT KEY` or `PROJECT sha256:HEX`."),
    rate_limit: float = typer.Option(None, "--rate-limit", help="Requests per minute per project."),
    max_body: int = typer.Option(1_000_000, "--max-body", help="Largest request body in bytes (413 beyond)."),
    max_upload: int = typer.Option(512 * 2**20, "--max-upload", help="Largest uploaded file in bytes (413 beyond)."),
    max_active_jobs: int = typer.Option(16, "--max-active-jobs", help="Queued and running jobs per project."),
    max_adapters: int = typer.Option(8, "--max-adapters", help="LoRA adapters kept in memory per base model."),
    stale_after: float = typer.Option(30.0, "--stale-after", help="Seconds without heartbeat before a job is "
                                      "queued again."),
    runs_root: Path = typer.Option(Path("runs"), "--runs-root", help="Runs trained from the CLI below this folder "
                                   "are listed by GET /v1/runs (besides every job's run)."),
):
    """The jobs API and the inference endpoints of `tunesmith serve` on one port, with workers."""
    import uvicorn

    from tunesmith.jobs.store import Store
    from tunesmith.jobs.tenancy import ProjectKeys
    from tunesmith.server.jobs_routes import create_server_app
    from tunesmith.serving.catalog import Catalog
    from tunesmith.serving.engine import LocalEngine
    from tunesmith.serving.registry import ModelRegistry
    from tunesmith.serving.security import RateLimiter, check_bind
    from tunesmith.serving.service import Service

    keys = ProjectKeys.load(api_key or [], api_keys_file)
    check_bind(host, keys.api_keys())
    store = Store(db, storage)
    # runs copied to models/ are served to every project; so are the names of the model registry,
    # which lives in the same database (tunesmith registry --db URL, docs/serving.md)
    catalog = Catalog(store.storage / "models", [], ModelRegistry(store.url))
    app = create_server_app(store, Service(catalog, LocalEngine(max_adapters=max_adapters)), keys,
                            RateLimiter(rate_limit), max_body, max_upload, max_active_jobs, runs_root)
    children = [_start_worker(store, stale_after) for _ in range(workers)]
    console.print(f"tunesmith server on http://{host}:{port}/v1 ({workers} worker(s); storage {store.storage})"
                  + (" (API keys required)" if keys.required else "") + f"; dashboard at http://{host}:{port}/",
                  highlight=False)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        for child in children:  # each stops its training at the next step; the job waits in the queue
            child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait()


def _start_worker(store, stale_after: float) -> subprocess.Popen:
    env = {**os.environ, "TUNESMITH_DB_URL": store.url}  # not on the command line: it may hold a password
    return subprocess.Popen([sys.executable, "-m", "tunesmith.cli.main", "worker", "--storage", str(store.storage),
                             "--stale-after", str(stale_after), "--heartbeat", str(min(2.0, stale_after / 4)),
                             "--parent", str(os.getpid())], env=env)


def worker(
    db: str = DB, storage: Path = STORAGE,
    heartbeat: float = typer.Option(2.0, "--heartbeat", help="Seconds between heartbeats."),
    stale_after: float = typer.Option(30.0, "--stale-after", help="Seconds without heartbeat before a job is "
                                      "queued again (give every worker the same)."),
    poll: float = typer.Option(1.0, "--poll", help="Seconds between looks at an empty queue."),
    once: bool = typer.Option(False, "--once", help="Stop when the queue is empty."),
    parent: int = typer.Option(None, "--parent", hidden=True, help="End with this process (the server)."),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Processes per job (one per GPU) for jobs that set "
                              "no tunesmith.train.distributed.nproc (docs/distributed.md)."),
):
    """Train queued jobs; start any number, on machines sharing the database and the storage root."""
    from tunesmith.jobs.store import Store
    from tunesmith.jobs.worker import Worker
    from tunesmith.utils.lifeline import die_with_parent

    if parent:
        die_with_parent(parent)
    work = Worker(Store(db, storage), heartbeat=heartbeat, stale_after=stale_after, poll=poll, nproc=nproc)
    signal.signal(signal.SIGTERM, lambda *_: work.stop.set())
    console.print(f"worker {work.name} on {work.store.storage}", highlight=False)
    try:
        work.run(once=once)
    except KeyboardInterrupt:
        work.stop.set()


def _client(base_url, api_key):
    from tunesmith.jobs.client import connect

    return connect(base_url, api_key)


def _when(stamp) -> str:
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S") if stamp else ""


@jobs_app.command("create")
def create(
    training_file: str = typer.Argument(..., help="A file id (file-...) or a JSONL file to upload."),
    model: str = typer.Option(..., "--model", "-m", help="Base model: zoo name or a model folder on the server."),
    validation_file: str = typer.Option(None, "--validation-file", help="File id or JSONL file."),
    suffix: str = typer.Option(None, "--suffix", help="Part of the fine-tuned model's name."),
    n_epochs: int = typer.Option(None, "--n-epochs", help="Epochs (default auto)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Batch size (default auto)."),
    learning_rate_multiplier: float = typer.Option(None, "--learning-rate-multiplier", help="Default auto."),
    method: str = typer.Option("supervised", "--method", help="supervised or dpo."),
    seed: int = typer.Option(None, "--seed"),
    extension: str = typer.Option(None, "--tunesmith", help='Any config option as JSON, e.g. '
                                  '\'{"method": {"name": "dora", "r": 16}, "train": {"packing": true}}\'.'),
    base_url: str = BASE_URL, api_key: str = API_KEY, as_json: bool = JSON,
):
    """Create a job (uploading the files given as paths)."""
    from tunesmith.jobs import client

    hyper = {"n_epochs": n_epochs, "batch_size": batch_size, "learning_rate_multiplier": learning_rate_multiplier}
    job = client.create(_client(base_url, api_key), model, training_file, validation_file, suffix, hyper, method,
                        seed, extension)
    print_json(job) if as_json else typer.echo(f"{job['id']} {job['status']}")


@jobs_app.command("list")
def list_jobs(limit: int = typer.Option(20, "--limit"), base_url: str = BASE_URL, api_key: str = API_KEY,
              as_json: bool = JSON):
    """The newest jobs."""
    from tunesmith.jobs.client import call

    page = call(_client(base_url, api_key).fine_tuning.jobs.list, limit=limit)
    rows = [j.model_dump() for j in page.data]
    if as_json:
        return print_json(rows)
    listing("fine-tuning jobs", [{"id": j["id"], "status": j["status"], "model": j["model"],
                                  "fine_tuned_model": j["fine_tuned_model"], "created": _when(j["created_at"])}
                                 for j in rows], False)


@jobs_app.command("show")
def show(job_id: str = typer.Argument(...), base_url: str = BASE_URL, api_key: str = API_KEY):
    """One job, as JSON."""
    from tunesmith.jobs.client import call

    print_json(call(_client(base_url, api_key).fine_tuning.jobs.retrieve, job_id).model_dump())


@jobs_app.command("events")
def events(job_id: str = typer.Argument(...), follow: bool = typer.Option(False, "--follow", "-f",
           help="Keep printing new events until the job ends."), base_url: str = BASE_URL, api_key: str = API_KEY,
           as_json: bool = JSON):
    """The job's events, oldest first."""
    from tunesmith.jobs import client

    for event in client.events(_client(base_url, api_key), job_id, follow):
        if as_json:
            typer.echo(__import__("json").dumps(event))
        else:
            typer.echo(f"{_when(event['created_at'])} {event['level']:5} {event['message']}")


@jobs_app.command("cancel")
def cancel(job_id: str = typer.Argument(...), base_url: str = BASE_URL, api_key: str = API_KEY):
    """Cancel a job (a running one stops at its next step, keeping a checkpoint)."""
    from tunesmith.jobs.client import call

    job = call(_client(base_url, api_key).fine_tuning.jobs.cancel, job_id)
    typer.echo(f"{job.id} {job.status}")
