"""`tunesmith jobs`: the jobs API through the official `openai` client, for a server on this
machine or another (base URL and key from options or $TUNESMITH_BASE_URL / $OPENAI_API_KEY).
API errors become one line naming the status, code and message."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from tunesmith.errors import ConfigError, TunesmithError

FINAL = {"succeeded", "failed", "cancelled"}
DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"


class ApiCallError(TunesmithError):
    """The server refused a call (its OpenAI error object, in one line)."""


def connect(base_url: str | None = None, api_key: str | None = None):
    import openai

    url = base_url or os.environ.get("TUNESMITH_BASE_URL") or DEFAULT_BASE_URL
    return openai.OpenAI(base_url=url, api_key=api_key or os.environ.get("OPENAI_API_KEY") or "none",
                         max_retries=1)


def call(fn, *args, **kwargs):
    import openai

    try:
        return fn(*args, **kwargs)
    except openai.APIStatusError as err:
        body = err.body if isinstance(err.body, dict) else {}
        error = body.get("error", body) if isinstance(body, dict) else {}
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        raise ApiCallError(f"{err.status_code}{f' {code}' if code else ''}: {message or err.message}") from None
    except openai.APIConnectionError as err:
        raise ApiCallError(f"cannot reach the server at {err.request.url if err.request else '?'}: start it with "
                           "`tunesmith server`, or give --base-url") from None


def create(client, model: str, training_file: str, validation_file: str | None = None, suffix: str | None = None,
           hyperparameters: dict | None = None, method: str = "supervised", seed: int | None = None,
           extension: str | None = None) -> dict:
    """A job; a training or validation file given as a path is uploaded first."""
    body = {"model": model, "training_file": _file_id(client, training_file), "suffix": suffix, "seed": seed,
            "hyperparameters": {k: v for k, v in (hyperparameters or {}).items() if v is not None}}
    if validation_file:
        body["validation_file"] = _file_id(client, validation_file)
    if method != "supervised":
        body["method"] = {"type": method}
    if extension:
        try:
            extra = json.loads(extension)
        except ValueError as err:
            raise ConfigError(f"--tunesmith {extension!r}: not a JSON object ({err})") from None
        body["extra_body"] = {"tunesmith": extra}
    body = {k: v for k, v in body.items() if v is not None}
    return call(client.fine_tuning.jobs.create, **body).model_dump()


def _file_id(client, given: str) -> str:
    path = Path(given)
    if given.startswith("file-") and not path.exists():
        return given
    if not path.is_file():
        raise ConfigError(f"{given}: neither a file id (file-...) nor a file to upload")
    with path.open("rb") as handle:
        uploaded = call(client.files.create, file=(path.name, handle), purpose="fine-tune")
    if uploaded.status == "error":
        raise ApiCallError(f"{path}: {uploaded.status_details}")
    return uploaded.id


def events(client, job_id: str, follow: bool = False, poll: float = 1.0) -> Iterator[dict]:
    """The job's events, oldest first; with `follow`, new ones as they come until the job ends."""
    seen: set[str] = set()
    while True:
        status = call(client.fine_tuning.jobs.retrieve, job_id).status  # read first: once final, all events are in
        every = call(lambda: [e.model_dump() for e in client.fine_tuning.jobs.list_events(job_id, limit=100)])
        for event in reversed(every):
            if event["id"] not in seen:
                seen.add(event["id"])
                yield event
        if not follow or status in FINAL:
            return
        time.sleep(poll)
