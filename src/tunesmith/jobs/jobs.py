"""Fine-tuning jobs: create (files checked, "auto" resolved, the RunConfig fixed), list, retrieve,
cancel, pause, resume, and their events and checkpoints, in OpenAI's object shapes.

Status: validating_files -> queued -> running -> succeeded | failed | cancelled; a running job
asked to cancel or pause keeps `running` until its worker has stopped the training at the next
step (with a checkpoint); a paused job is queued again by resume and continues from there."""

from __future__ import annotations

import random
from pathlib import Path

import sqlalchemy as sa

from tunesmith.jobs import files as job_files
from tunesmith.jobs.errors import BadRequest, LimitReached, NotFound
from tunesmith.jobs.hyper import build_config, method_settings
from tunesmith.jobs.store import Store, as_list, new_id, now, page
from tunesmith.jobs.tables import checkpoints, events, jobs

ACTIVE = ("validating_files", "queued", "running", "paused")
FINAL = ("succeeded", "failed", "cancelled")
DEFAULT_MAX_ACTIVE = 16


def job_object(row: dict, run_id: str | None = None) -> dict:
    """OpenAI's job object, and `run_id`: the id of the job's run directory (GET /v1/runs/{run_id}),
    None before its worker has created it."""
    hyper = row["hyperparameters"]
    kind = row["method"]["type"]
    method = {"type": kind, kind: {"hyperparameters": {**hyper, **row["method"].get("settings", {})}}}
    return {"id": row["id"], "object": "fine_tuning.job", "created_at": row["created_at"], "error": row["error"],
            "fine_tuned_model": row["fine_tuned_model"], "finished_at": row["finished_at"],
            "hyperparameters": hyper, "model": row["model"], "organization_id": row["project"],
            "result_files": row["result_files"], "seed": row["seed"], "status": row["status"],
            "trained_tokens": row["trained_tokens"], "training_file": row["training_file"],
            "validation_file": row["validation_file"], "estimated_finish": row["estimated_finish"],
            "integrations": [], "metadata": row["metadata"], "method": method,
            "user_provided_suffix": row["suffix"], "run_id": run_id}


def _object(store: Store, row: dict) -> dict:
    from tunesmith.runs.rundir import RunDir

    return job_object(row, RunDir(store.run_dir(row["id"])).id)


def _check_model(model) -> None:
    from tunesmith.models.zoo import ZOO

    if not isinstance(model, str) or not model:
        raise BadRequest("model is required: a zoo name or a model directory on the server", "model")
    path = Path(model).expanduser()
    if model not in ZOO and not (path / "config.json").is_file() and not (path.suffix == ".gguf" and path.is_file()):
        raise BadRequest(f"model {model!r} is neither a tunesmith zoo name nor a model directory on the server "
                         "(`tunesmith models list` shows the zoo)", "model", code="model_not_available")


def _check_metadata(metadata) -> dict | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or len(metadata) > 16 or not all(
            isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512 for k, v in metadata.items()):
        raise BadRequest("metadata holds at most 16 string keys (64 characters) with string values "
                         "(512 characters)", "metadata")
    return metadata


def create(store: Store, project: str, body: dict, max_active: int = DEFAULT_MAX_ACTIVE) -> dict:
    """A new job from the request body of POST /v1/fine_tuning/jobs (the `tunesmith` key holds the
    extension object). Returns the job object: queued, or failed when its training file is not valid."""
    model, suffix, seed, metadata = _check_request(body)
    train_row = job_files.get_row(store, project, body["training_file"], "training_file")
    valid_row = (job_files.get_row(store, project, body["validation_file"], "validation_file")
                 if body.get("validation_file") else None)
    kind, hyper, settings = method_settings(body.get("method"), body.get("hyperparameters"))
    rows = max(1, (train_row["validation"] or {}).get("rows", 1))
    config, resolved = build_config(model, store.blob(train_row["sha256"]),
                                    store.blob(valid_row["sha256"]) if valid_row else None,
                                    rows, seed, kind, hyper, settings, body.get("tunesmith"))
    job_id = new_id("ftjob")
    config["output"] = {"dir": str(store.run_dir(job_id))}
    row = {"id": job_id, "project": project, "status": "validating_files", "control": None, "model": model,
           "suffix": suffix, "training_file": train_row["id"],
           "validation_file": valid_row["id"] if valid_row else None, "seed": seed, "metadata": metadata,
           "hyperparameters": resolved, "method": {"type": kind, "settings": settings}, "config": config,
           "error": None, "fine_tuned_model": None, "trained_tokens": None, "result_files": [],
           "estimated_finish": None, "worker": None, "heartbeat": None, "attempts": 0, "created_at": now(),
           "started_at": None, "finished_at": None}
    with store.write() as connection:  # SQLite: the write lock; PostgreSQL: a lock per project
        if connection.dialect.name == "postgresql":  # so that two creates never both take the last place
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:project))"), {"project": project})
        active = connection.execute(sa.select(sa.func.count()).select_from(jobs).where(
            jobs.c.project == project, jobs.c.status.in_(ACTIVE))).scalar()
        if active >= max_active:
            raise LimitReached(f"this project has {active} active jobs, its limit; wait for one to finish "
                               "or cancel one")
        connection.execute(jobs.insert().values(**row))
        _validate_files(connection, job_id, kind, train_row, valid_row)
    return get(store, project, job_id)


def _check_request(body: dict) -> tuple[str, str | None, int, dict | None]:
    """(model, suffix, seed, metadata) of a create request, each checked."""
    model, suffix, seed = body.get("model"), body.get("suffix"), body.get("seed")
    _check_model(model)
    if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64 or ":" in suffix):
        raise BadRequest("suffix is at most 64 characters, without ':'", "suffix")
    if seed is None:
        seed = random.randrange(2**31)
    elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise BadRequest("seed must be a whole number from 0 to 2147483647", "seed")
    if not body.get("training_file"):
        raise BadRequest("training_file is required", "training_file", code="missing_required_parameter")
    return model, suffix, seed, _check_metadata(body.get("metadata"))


def _validate_files(connection, job_id: str, kind: str, train_row: dict, valid_row: dict | None) -> None:
    """validating_files -> queued, or failed with the files' first problem (checked on upload)."""
    add_event(connection, job_id, f"Created fine-tuning job: {job_id}")
    add_event(connection, job_id, f"Validating training file: {train_row['id']}"
              + (f" and validation file: {valid_row['id']}" if valid_row else ""))
    error = _file_error(train_row, "training_file", kind) or (
        _file_error(valid_row, "validation_file", kind) if valid_row else None)
    if error:
        _finish(connection, job_id, "failed", error=error)
        add_event(connection, job_id, f"Job failed: {error['message']}", level="error")
    else:
        connection.execute(jobs.update().where(jobs.c.id == job_id).values(status="queued"))
        add_event(connection, job_id, "Files validated, moving job to queued state")


def _file_error(row: dict, param: str, kind: str) -> dict | None:
    check = row["validation"] or {}
    name = f"{param.replace('_', ' ')} {row['id']}"
    if row["purpose"] != "fine-tune":
        return {"code": "invalid_file_purpose", "param": param,
                "message": f"{name} has purpose {row['purpose']!r}, not 'fine-tune'"}
    if check.get("problems"):
        first = check["problems"][0]
        return {"code": first["code"], "param": param, "message": f"{name}: {first['message']}",
                "line": first["line"]}
    wanted = "preference" if kind == "dpo" else "chat"
    if check.get("kind") != wanted:
        rows = ("preference rows (input, preferred_output, non_preferred_output)" if wanted == "preference"
                else "chat rows (messages)")
        return {"code": "invalid_file_format", "param": param,
                "message": f"{name}: line 1: method {kind} trains on {rows}; this file holds {check.get('kind')} rows"}
    return None


def add_event(connection, job_id: str, message: str, level: str = "info", type: str = "message",
              data: dict | None = None) -> None:
    connection.execute(events.insert().values(id=new_id("ftevent"), job_id=job_id, level=level, type=type,
                                              message=message, data=data, created_at=now()))


def _finish(connection, job_id: str, status: str, **values) -> None:
    connection.execute(jobs.update().where(jobs.c.id == job_id).values(
        status=status, control=None, worker=None, heartbeat=None, estimated_finish=None, finished_at=now(),
        **values))


def get_row(store: Store, project: str, job_id: str) -> dict:
    row = store.one(sa.select(jobs).where(jobs.c.id == job_id, jobs.c.project == project))
    if row is None:
        raise NotFound(f"no fine-tuning job with id {job_id!r}", "fine_tuning_job_id")
    return row


def get(store: Store, project: str, job_id: str) -> dict:
    return _object(store, get_row(store, project, job_id))


def _limit(limit: int) -> int:
    if not 1 <= limit <= 100:
        raise BadRequest("limit must be between 1 and 100", "limit")
    return limit


def list_jobs(store: Store, project: str, after: str | None = None, limit: int = 20,
              metadata: dict | None = None) -> dict:
    with store.read() as connection:
        rows, more = page(connection, jobs, jobs.c.project == project, None, 10**9) if metadata else \
            page(connection, jobs, jobs.c.project == project, after, _limit(limit))
    if metadata:  # JSON columns compare alike on no two dialects: filter here, then page
        rows = [r for r in rows if all((r["metadata"] or {}).get(k) == v for k, v in metadata.items())]
        start = next((i + 1 for i, r in enumerate(rows) if r["id"] == after), 0) if after else 0
        rows, more = rows[start:start + _limit(limit)], len(rows) > start + limit
    return as_list([_object(store, r) for r in rows], more)


def _control(store: Store, project: str, job_id: str, action: str) -> dict:
    get_row(store, project, job_id)
    with store.write() as connection:
        status = connection.execute(sa.select(jobs.c.status).where(jobs.c.id == job_id)).scalar()
        if action == "cancel" and status in ("validating_files", "queued", "paused"):
            _finish(connection, job_id, "cancelled")
            add_event(connection, job_id, "Job cancelled")
        elif action in ("cancel", "pause") and status == "running":
            connection.execute(jobs.update().where(jobs.c.id == job_id).values(control=action))
            add_event(connection, job_id, f"{action.capitalize()} requested; the training stops at its next step")
        elif action == "pause" and status == "queued":
            connection.execute(jobs.update().where(jobs.c.id == job_id).values(status="paused"))
            add_event(connection, job_id, "Job paused")
        elif action == "resume" and status == "paused":
            connection.execute(jobs.update().where(jobs.c.id == job_id).values(status="queued", control=None))
            add_event(connection, job_id, "Job resumed; queued to continue from its last checkpoint")
        else:
            raise BadRequest(f"job {job_id} is {status}; it cannot be {action}{'d' if action != 'cancel' else 'led'}",
                             "fine_tuning_job_id", code="invalid_job_state")
    return get(store, project, job_id)


def cancel(store: Store, project: str, job_id: str) -> dict:
    return _control(store, project, job_id, "cancel")


def pause(store: Store, project: str, job_id: str) -> dict:
    return _control(store, project, job_id, "pause")


def resume(store: Store, project: str, job_id: str) -> dict:
    return _control(store, project, job_id, "resume")


def list_events(store: Store, project: str, job_id: str, after: str | None = None, limit: int = 20) -> dict:
    get_row(store, project, job_id)
    with store.read() as connection:
        rows, more = page(connection, events, events.c.job_id == job_id, after, _limit(limit))
    return as_list([{"id": r["id"], "object": "fine_tuning.job.event", "created_at": r["created_at"],
                     "level": r["level"], "message": r["message"], "data": r["data"] or {}, "type": r["type"]}
                    for r in rows], more)


def list_checkpoints(store: Store, project: str, job_id: str, after: str | None = None, limit: int = 10) -> dict:
    get_row(store, project, job_id)
    with store.read() as connection:
        rows, more = page(connection, checkpoints, checkpoints.c.job_id == job_id, after, _limit(limit))
    return as_list([{"id": r["id"], "object": "fine_tuning.job.checkpoint", "created_at": r["created_at"],
                     "fine_tuned_model_checkpoint": r["model"], "fine_tuning_job_id": job_id,
                     "metrics": r["metrics"], "step_number": r["step_number"]} for r in rows], more)


def model_path(store: Store, name: str, project: str) -> Path | None:
    """The run directory (or checkpoint folder) of a fine-tuned model of `project`, by its `ft:` name;
    or the base model one of the project's succeeded jobs was trained from, by the job's `model`
    (so that a base can be served beside what was tuned from it)."""
    if not name.startswith("ft:"):
        return Path(name) if name in base_models(store, project) else None
    row = store.one(sa.select(jobs.c.id).where(jobs.c.fine_tuned_model == name, jobs.c.project == project,
                                               jobs.c.status == "succeeded"))
    if row:
        return store.run_dir(row["id"])
    row = store.one(sa.select(checkpoints.c.path).join(jobs, jobs.c.id == checkpoints.c.job_id).where(
        checkpoints.c.model == name, jobs.c.project == project))
    return store.storage / row["path"] if row else None


def base_models(store: Store, project: str) -> list[str]:
    """The base models (zoo names or paths) of the project's succeeded jobs."""
    with store.read() as connection:
        rows = connection.execute(sa.select(jobs.c.model).distinct().where(
            jobs.c.project == project, jobs.c.status == "succeeded")).all()
    return [row[0] for row in rows]


def fine_tuned_models(store: Store, project: str) -> list[tuple[str, Path]]:
    with store.read() as connection:
        rows = connection.execute(sa.select(jobs.c.id, jobs.c.fine_tuned_model).where(
            jobs.c.project == project, jobs.c.status == "succeeded")).all()
    return [(name, store.run_dir(job_id)) for job_id, name in rows]


__all__ = ["cancel", "create", "get", "list_checkpoints", "list_events", "list_jobs", "model_path",
           "pause", "resume"]
