"""The training process of one job, forked by a worker (jobs.worker) from a process that has
imported the training stack once (multiprocessing's forkserver, preloading this module): a job
starts in a second instead of re-importing torch, transformers and peft each time.

It runs tunesmith.train with the job's config (resuming from the run's last checkpoint when there
is one), records events, metrics and checkpoints (jobs.recorder) and writes the outcome. It dies
with its worker, so that a worker killed with -9 leaves no training behind to run the job twice."""

from __future__ import annotations

import csv
import io
import os
from functools import partial

import sqlalchemy as sa

from tunesmith.jobs import files as job_files
from tunesmith.jobs.hyper import base_name
from tunesmith.jobs.jobs import _finish, add_event
from tunesmith.jobs.recorder import Recorder
from tunesmith.jobs.store import Store, now
from tunesmith.jobs.tables import jobs
from tunesmith.utils.lifeline import die_with_parent

CSV_COLUMNS = ("step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy")


def run(url: str, storage: str, job_id: str, worker: str, worker_pid: int, log: str, nproc: int = 1) -> None:
    """The process target: output to the job's log file, then train (exit code 0 when the outcome
    is recorded; anything else is recorded by the worker)."""
    die_with_parent(worker_pid)
    with open(log, "ab", buffering=0) as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
    main(Store(url, storage), job_id, worker, nproc)


def main(store: Store, job_id: str, worker: str, nproc: int = 1) -> int:
    """`nproc`: processes for a job that sets none itself (`tunesmith worker --nproc`, one per GPU)."""
    import tunesmith
    from tunesmith.config import validate_config
    from tunesmith.errors import TunesmithError
    from tunesmith.runs.rundir import RunDir
    from tunesmith.training.launch import DistributedRunError

    job = store.one(sa.select(jobs).where(jobs.c.id == job_id))
    config = validate_config(job["config"], f"job {job_id}")
    run = RunDir(config.output.dir)
    name = f"ft:{base_name(job['model'])}:{job['suffix'] or ''}:{job_id}"
    if nproc > 1 and config.train.distributed.nproc == 1:
        config.train.distributed.nproc = nproc
    try:
        # a job run before (its worker died, or it was paused) continues its run: from the last
        # checkpoint, or from the start when it died before the first one
        resume = RunDir.is_run(run.path)
        if config.train.distributed.enabled:  # rank 0 of the processes records (training/launch.py)
            from tunesmith.training.launch import launch

            result = launch(config, resume=resume, front_end=partial(recording, store.url, str(store.storage),
                                                                     job_id, name))
        else:
            recorder = Recorder(store, job, name)
            result = tunesmith.train(config, resume=resume, callbacks=[recorder], events=recorder.event)
    except DistributedRunError as err:
        return _fail(store, job_id, worker, "training_failed", str(err))
    except TunesmithError as err:
        return _fail(store, job_id, worker, "invalid_training_config", str(err))
    except Exception as err:  # the training failed (not the caller's request): the job records why
        return _fail(store, job_id, worker, "training_failed", f"{type(err).__name__}: {err}")
    if result.status == "succeeded":
        _succeed(store, job, worker, name, run)
    else:
        _stopped(store, job_id, worker)
    return 0


def recording(url: str, storage: str, job_id: str, name: str) -> tuple[list, object]:
    """The front end of a multi-process job's rank 0: the job's recorder."""
    store = Store(url, storage)
    recorder = Recorder(store, store.one(sa.select(jobs).where(jobs.c.id == job_id)), name)
    return [recorder], recorder.event


def _mine(job_id: str, worker: str):
    return sa.and_(jobs.c.id == job_id, jobs.c.worker == worker, jobs.c.status == "running")


def _succeed(store: Store, job: dict, worker: str, name: str, run) -> None:
    from tunesmith.utils.io import read_jsonl

    rows = read_jsonl(run.metrics_file) if run.metrics_file.is_file() else []
    result = job_files.add_result(store, job["project"], "step_metrics.csv", metrics_csv(rows))
    with store.write() as connection:
        done = connection.execute(jobs.update().where(_mine(job["id"], worker)).values(
            status="succeeded", fine_tuned_model=name, result_files=[result["id"]], control=None, worker=None,
            heartbeat=None, estimated_finish=None, finished_at=now())).rowcount
        if done:
            add_event(connection, job["id"], f"New fine-tuned model created: {name}")
            add_event(connection, job["id"], "The job has successfully completed")


def _stopped(store: Store, job_id: str, worker: str) -> None:
    """Stopped at a step, with a checkpoint: paused or cancelled through the API, or queued again
    because its worker is stopping (requeue)."""
    with store.write() as connection:
        found = connection.execute(sa.select(jobs.c.control).where(_mine(job_id, worker))).first()
        if found is None:
            return
        if found.control in ("pause", "requeue"):
            status = "paused" if found.control == "pause" else "queued"
            connection.execute(jobs.update().where(_mine(job_id, worker)).values(
                status=status, control=None, worker=None, heartbeat=None, estimated_finish=None))
            add_event(connection, job_id, f"Job {status}; it continues from its last checkpoint"
                      + (" when resumed" if status == "paused" else ""))
        else:
            _finish(connection, job_id, "cancelled")
            add_event(connection, job_id, "Job cancelled")


def _fail(store: Store, job_id: str, worker: str, code: str, message: str) -> int:
    with store.write() as connection:
        if connection.execute(sa.select(jobs.c.id).where(_mine(job_id, worker))).first():
            _finish(connection, job_id, "failed", error={"code": code, "message": message, "param": None})
            add_event(connection, job_id, f"Job failed: {message}", level="error")
    return 0


def metrics_csv(rows: list[dict]) -> bytes:
    """The run's logged steps in the columns of OpenAI's step_metrics.csv result file."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        if "loss" in row or "eval_loss" in row:
            writer.writerow([row.get("step"), row.get("loss", ""), row.get("mean_token_accuracy", ""),
                             row.get("eval_loss", ""), row.get("eval_mean_token_accuracy", "")])
    return out.getvalue().encode()
