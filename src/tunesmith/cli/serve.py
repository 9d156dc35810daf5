"""tunesmith serve [RUN|MODEL|NAME ...]: the OpenAI-compatible server (uvicorn)."""

from __future__ import annotations

from pathlib import Path

import typer

from tunesmith.utils.progress import console


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    models: list[str] = typer.Argument(None, help="Runs, model directories, zoo models or registered names to "
                                       "serve (runs under --runs-root are served on request too)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; beyond loopback needs API keys."),
    port: int = typer.Option(8000, help="Port to listen on (0: any free port)."),
    runs_root: Path = typer.Option(Path("runs"), "--runs-root", help="Runs below this folder are served by "
                                   "their path relative to it; model names never reach outside it."),
    max_adapters: int = typer.Option(8, "--max-adapters", help="LoRA adapters kept in memory per base model."),
    max_batch: int = typer.Option(16, "--max-batch", help="Sequences decoded together per base model."),
    max_queue: int = typer.Option(64, "--max-queue", help="Requests waiting beyond this get 429."),
    api_key: list[str] = typer.Option(None, "--api-key", help="A key clients must send (repeatable)."),
    api_keys_file: Path = typer.Option(None, "--api-keys-file", help="Keys, one a line (plain or sha256:HEX)."),
    rate_limit: float = typer.Option(None, "--rate-limit", help="Requests per minute per key (default: no limit)."),
    max_body: int = typer.Option(1_000_000, "--max-body", help="Largest request body in bytes (413 beyond)."),
    db: str = typer.Option(None, "--db", help="Model registry database URL (default: none; see docs/serving.md)."),
    log_requests: Path = typer.Option(None, "--log-requests", help="Append sampled chat traffic to this JSONL "
                                      "file (OpenAI chat rows, personal data masked)."),
    log_sample: float = typer.Option(0.1, "--log-sample", min=0.0, max=1.0, help="Share of requests logged."),
    engine_name: str = typer.Option("local", "--engine", help="local (transformers + PEFT, CPU or GPU) or vllm "
                                    "(GPUs; pip install 'tunesmith[vllm]')."),
    grpc_port: int = typer.Option(None, "--grpc-port", help="Also serve predict and generate over gRPC on this "
                                  "port (same host, keys, models and metrics; see docs/serving.md)."),
):
    """Serve runs and models over an OpenAI-compatible HTTP API."""
    from tunesmith.serving.engine import prefer_sleeping_threads

    prefer_sleeping_threads()
    import uvicorn

    from tunesmith.server.app import create_app
    from tunesmith.serving.catalog import Catalog
    from tunesmith.serving.engine import make_engine
    from tunesmith.serving.security import ApiKeys, RateLimiter, check_bind
    from tunesmith.serving.service import Service

    keys = ApiKeys.load(api_key or [], api_keys_file)
    check_bind(host, keys)
    registry = None
    if db:
        from tunesmith.serving.registry import ModelRegistry

        registry = ModelRegistry(db)
    catalog = Catalog(runs_root, models or [], registry)
    engine = make_engine(engine_name, max_adapters, max_batch, max_queue)
    for target in catalog.named.values():
        engine.load(target) if target.can_generate else None
    traffic = None
    if log_requests:
        from tunesmith.serving.traffic import TrafficLog

        traffic = TrafficLog(log_requests, log_sample)
    service, rate = Service(catalog, engine, traffic=traffic), RateLimiter(rate_limit)
    app = create_app(service, keys, rate, max_body)
    console.print(f"serving {len(catalog.named)} model(s) on http://{host}:{port}/v1"
                  + (f" and grpc {host}:{grpc_port}" if grpc_port is not None else "")
                  + (" (API keys required)" if keys.required else ""), highlight=False)
    if grpc_port is None:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    else:
        from tunesmith.server.grpc_server import run_with_http

        run_with_http(app, service, host, port, grpc_port, keys, rate, max_body)
