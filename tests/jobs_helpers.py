"""Helpers of the jobs API tests: a `tunesmith server` app (jobs + inference) on 127.0.0.1 in a
thread with in-process workers (each training in its own child process, as in production), and
training files."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager

from inproc import serving

ROWS = [{"messages": [{"role": "user", "content": f"what is {i} plus {i}?"},
                      {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]} for i in range(12)]


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def tiny_job(max_steps: int = 4, save_steps: int = 2, **train) -> dict:
    """The extension object that makes a job train the tiny model for a few steps."""
    return {"method": {"name": "lora", "r": 4, "alpha": 8, "dropout": 0.0}, "data": {"template": "chatml"},
            "train": {"max_steps": max_steps, "save_steps": save_steps, "precision": "fp32",
                      "save_total_limit": 10, **train}}


@contextmanager
def running_server(store, keys=None, workers: int = 1, stale_after: float = 30.0, **limits):
    """(base URL, [Worker]) of a server on a free port; stopped, with its workers, on exit."""
    from tunesmith.jobs.worker import Worker
    from tunesmith.server.jobs_routes import create_server_app
    from tunesmith.serving.catalog import Catalog
    from tunesmith.serving.engine import LocalEngine
    from tunesmith.serving.service import Service

    service = Service(Catalog(store.storage / "models", []), LocalEngine())
    app = create_server_app(store, service, keys, **limits)
    pool = [Worker(store, name=f"test-worker-{i}", heartbeat=0.3, stale_after=stale_after, poll=0.2)
            for i in range(workers)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in pool]
    for t in threads:
        t.start()
    try:
        with serving(app) as url:
            yield url, pool
    finally:
        for w in pool:
            w.stop.set()
        for t in threads:
            t.join(120)
        service.engine.close()


def wait_for(check, timeout: float = 180, every: float = 0.3, what: str = "condition"):
    """Poll `check()` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")
