"""POST /v1/files/{file_id}/inspect: an uploaded file inspected as training would read it
(tunesmith.training.inspection), with the request's options checked."""

from __future__ import annotations

from tunesmith.jobs import files as job_files
from tunesmith.jobs.errors import BadRequest
from tunesmith.jobs.store import Store

OPTIONS = {"task": str, "model": str, "format": str, "columns": list, "preview": int, "estimate": dict,
           "tokens_per_second": (int, float)}


def inspect(store: Store, project: str, file_id: str, body: dict) -> dict:
    row = job_files.get_row(store, project, file_id)
    for key, value in body.items():
        kind = OPTIONS.get(key)
        if kind is None:
            raise BadRequest(f"unknown option {key!r}; known: {', '.join(OPTIONS)}", key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise BadRequest(f"{key} has the wrong type ({type(value).__name__})", key)
    from tunesmith.training.inspection import inspect_data

    found = inspect_data(store.blob(row["sha256"]), task=body.get("task"), model=body.get("model"),
                         fmt=body.get("format") or "auto", columns=body.get("columns"),
                         preview=5 if body.get("preview") is None else body["preview"],
                         estimate=body.get("estimate"), tokens_per_second=body.get("tokens_per_second"),
                         name=row["filename"])
    return {"object": "file.inspection", "id": file_id, "filename": row["filename"], **found}
