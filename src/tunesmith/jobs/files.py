"""Files of the jobs API: stored once by content (blobs/<sha256>), listed per project, validated
on upload (jobs.validate). A file row is the project's handle on a blob; deleting the last handle
that no job needs removes the blob."""

from __future__ import annotations

import hashlib
import os

import sqlalchemy as sa

from tunesmith.jobs.errors import BadRequest, NotFound
from tunesmith.jobs.store import Store, as_list, new_id, now, page
from tunesmith.jobs.tables import files, jobs
from tunesmith.jobs.validate import check_lines
from tunesmith.utils.io import atomic_path

PURPOSES = {"fine-tune"}  # what clients upload; fine-tune-results are written by tunesmith


def file_object(row: dict) -> dict:
    return {"id": row["id"], "object": "file", "bytes": row["bytes"], "created_at": row["created_at"],
            "filename": row["filename"], "purpose": row["purpose"], "status": row["status"],
            "status_details": row["status_details"], "expires_at": None}


def upload(store: Store, project: str, filename: str, purpose: str, content: bytes) -> dict:
    if purpose not in PURPOSES:
        raise BadRequest(f"purpose {purpose!r} is not supported; tunesmith stores files with purpose "
                         "'fine-tune'", "purpose")
    check = check_lines(content)
    details = "; ".join(p["message"] for p in check.problems) or None
    return _add(store, project, filename, purpose, content, "error" if check.problems else "processed",
                details, check.as_dict())


def add_result(store: Store, project: str, filename: str, content: bytes) -> dict:
    """A file tunesmith wrote for a job (its metrics CSV), with purpose fine-tune-results."""
    return _add(store, project, filename, "fine-tune-results", content, "processed", None, None)


def _add(store, project, filename, purpose, content, status, details, validation) -> dict:
    sha = hashlib.sha256(content).hexdigest()
    blob = store.blob(sha)
    if not blob.is_file():
        blob.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(blob) as tmp:
            tmp.write_bytes(content)
    row = {"id": new_id("file"), "project": project, "filename": os.path.basename(filename or "file")[:255],
           "purpose": purpose, "sha256": sha, "bytes": len(content), "status": status,
           "status_details": details, "validation": validation, "created_at": now()}
    with store.write() as connection:
        connection.execute(files.insert().values(**row))
    return file_object(row)


def get_row(store: Store, project: str, file_id: str, param: str = "file_id") -> dict:
    row = store.one(sa.select(files).where(files.c.id == file_id, files.c.project == project))
    if row is None:
        raise NotFound(f"no file with id {file_id!r}", param)
    return row


def get(store: Store, project: str, file_id: str) -> dict:
    return file_object(get_row(store, project, file_id))


def content(store: Store, project: str, file_id: str) -> bytes:
    return store.blob(get_row(store, project, file_id)["sha256"]).read_bytes()


def list_files(store: Store, project: str, purpose: str | None = None, after: str | None = None,
               limit: int = 10000, order: str = "desc") -> dict:
    if order not in ("asc", "desc"):
        raise BadRequest("order must be 'asc' or 'desc'", "order")
    if not 1 <= limit <= 10000:
        raise BadRequest("limit must be between 1 and 10000", "limit")
    where = files.c.project == project
    if purpose:
        where = sa.and_(where, files.c.purpose == purpose)
    with store.read() as connection:
        rows, more = page(connection, files, where, after, limit, newest_first=order == "desc")
    return as_list([file_object(r) for r in rows], more)


def delete(store: Store, project: str, file_id: str) -> dict:
    row = get_row(store, project, file_id)
    with store.write() as connection:
        connection.execute(files.delete().where(files.c.id == file_id))
        others = connection.execute(sa.select(sa.func.count()).select_from(files).where(
            files.c.sha256 == row["sha256"])).scalar()
        needed = connection.execute(sa.select(sa.func.count()).select_from(jobs).where(
            sa.or_(jobs.c.training_file == file_id, jobs.c.validation_file == file_id),
            jobs.c.status.in_(("validating_files", "queued", "running", "paused")))).scalar()
    if not others and not needed:
        store.blob(row["sha256"]).unlink(missing_ok=True)
    return {"id": file_id, "object": "file", "deleted": True}
