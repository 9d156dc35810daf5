"""A worker: claims one queued job at a time, trains it in a child process (jobs.child) and
heartbeats while it runs. Any number of workers, on any machines that share the database and
the storage root, take jobs from one queue; each job runs on one worker at a time:

- the claim is atomic: PostgreSQL locks the row it picks with FOR UPDATE SKIP LOCKED (other
  workers skip it instead of waiting); SQLite takes the database's write lock first (BEGIN
  IMMEDIATE), so two claims never interleave;
- a job whose heartbeat is older than `stale_after` seconds (its worker was killed or its machine
  lost) is queued again by the next worker that looks, and resumes from its last checkpoint;
- a worker that finds its job taken from it (it heartbeated too late) kills its training;
- the child dies with its worker (jobs.child), and the processes of a multi-process job with the
  child (training.launch), so a killed worker leaves no training running.

Children are forked from multiprocessing's forkserver, which imports the training stack once per
worker (jobs.child); only the job's id and the worker's name pass to it, no user data.

Cancel and pause reach the training through its run's CANCEL file (tunesmith.runs.cancel): it
stops after the current step with a checkpoint."""

from __future__ import annotations

import multiprocessing
import os
import socket
import threading
import time

import sqlalchemy as sa

from tunesmith.jobs.jobs import add_event
from tunesmith.jobs.store import Store, now
from tunesmith.jobs.tables import jobs
from tunesmith.utils.io import write_text

PRELOAD = ["tunesmith.jobs.child", "tunesmith.training.runner"]


def _context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 10000}"


def requeue_stale(store: Store, stale_after: float) -> list[str]:
    """Queue again the running jobs whose worker stopped heartbeating; returns their ids."""
    limit = time.time() - stale_after
    with store.write() as connection:
        found = connection.execute(sa.select(jobs.c.id, jobs.c.control).where(
            jobs.c.status == "running", jobs.c.heartbeat < limit)).all()
        for job_id, control in found:
            status = {"cancel": "cancelled", "pause": "paused"}.get(control, "queued")  # requeue too
            values = {"finished_at": now()} if status == "cancelled" else {}
            connection.execute(jobs.update().where(jobs.c.id == job_id, jobs.c.status == "running",
                                                   jobs.c.heartbeat < limit).values(
                status=status, control=None, worker=None, heartbeat=None, estimated_finish=None, **values))
            add_event(connection, job_id, f"The worker of this job stopped answering; job {status}"
                      + (" to resume from its last checkpoint" if status == "queued" else ""), level="warn")
    return [job_id for job_id, _ in found]


def claim(store: Store, worker: str) -> dict | None:
    """Take the oldest queued job for `worker` (status running), or None when none waits."""
    with store.write() as connection:
        query = sa.select(jobs.c.id).where(jobs.c.status == "queued").order_by(jobs.c.seq).limit(1)
        if store.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        job_id = connection.execute(query).scalar()
        if job_id is None:
            return None
        taken = connection.execute(jobs.update().where(jobs.c.id == job_id, jobs.c.status == "queued").values(
            status="running", worker=worker, heartbeat=time.time(), attempts=jobs.c.attempts + 1,
            started_at=sa.func.coalesce(jobs.c.started_at, now()))).rowcount
        if not taken:
            return None
        attempts = connection.execute(sa.select(jobs.c.attempts).where(jobs.c.id == job_id)).scalar()
        add_event(connection, job_id, f"Job started on worker {worker}" + (
            f" (attempt {attempts}, resuming from the last checkpoint)" if attempts > 1 else ""))
    return store.one(sa.select(jobs).where(jobs.c.id == job_id))


class Worker:
    def __init__(self, store: Store, name: str | None = None, heartbeat: float = 2.0, stale_after: float = 30.0,
                 poll: float = 1.0, nproc: int = 1):
        self.store, self.name, self.nproc = store, name or worker_name(), nproc  # nproc: per job, see jobs.child
        self.heartbeat, self.stale_after, self.poll = heartbeat, stale_after, poll
        self.stop = threading.Event()
        self.logs = store.storage / "logs"

    def run(self, once: bool = False) -> int:
        """Work until stopped (or, with `once`, until the queue is empty); returns the jobs run."""
        done = 0
        from multiprocessing import forkserver

        _context()
        forkserver.ensure_running()  # the training stack imports while the queue is polled
        while not self.stop.is_set():
            requeue_stale(self.store, self.stale_after)
            job = claim(self.store, self.name)
            if job is None:
                if once:
                    break
                self.stop.wait(self.poll)
                continue
            self.run_job(job)
            done += 1
        return done

    def run_job(self, job: dict) -> None:
        child = self._start(job["id"])
        cancel_file = self.store.run_dir(job["id"]) / "CANCEL"
        while child.is_alive():
            state = self._beat(job["id"])
            if state is None:  # the job was taken from this worker (or deleted): stop its training
                child.kill()
                break
            if self.stop.is_set() and not state:  # this worker stops: the job goes back to the queue
                state = self._ask(job["id"], "requeue")
            if state and cancel_file.parent.is_dir():  # cancel, pause or requeue: stop at the next step
                write_text(cancel_file, "stop\n")
            time.sleep(self.heartbeat)
        child.join()
        self._after(job["id"], child.exitcode)

    def _start(self, job_id: str):
        from tunesmith.jobs.child import run

        self.logs.mkdir(parents=True, exist_ok=True)
        child = _context().Process(target=run, name=f"tunesmith-job-{job_id}", daemon=False, args=(
            self.store.url, str(self.store.storage), job_id, self.name, os.getpid(), str(self.logs / f"{job_id}.log"),
            self.nproc))
        child.start()
        return child

    def _beat(self, job_id: str) -> str | None:
        """Heartbeat; returns the job's control request ("" for none), None when it is no longer ours."""
        with self.store.write() as connection:
            if not connection.execute(jobs.update().where(self._mine(job_id)).values(heartbeat=time.time())).rowcount:
                return None
            return connection.execute(sa.select(jobs.c.control).where(jobs.c.id == job_id)).scalar() or ""

    def _mine(self, job_id: str):
        return sa.and_(jobs.c.id == job_id, jobs.c.worker == self.name, jobs.c.status == "running")

    def _ask(self, job_id: str, control: str) -> str:
        with self.store.write() as connection:
            connection.execute(jobs.update().where(self._mine(job_id), jobs.c.control.is_(None)).values(
                control=control))
        return control

    def _after(self, job_id: str, code: int) -> None:
        """The child has ended; a job it left running failed with it, or is queued again when this
        worker is stopping (it resumes from its checkpoint on the next worker)."""
        with self.store.write() as connection:
            mine = self._mine(job_id)
            if not connection.execute(sa.select(jobs.c.id).where(mine)).first():
                return
            if self.stop.is_set():
                connection.execute(jobs.update().where(mine).values(status="queued", worker=None, heartbeat=None))
                add_event(connection, job_id, "Worker stopped; job queued to resume from its last checkpoint")
                return
            error = {"code": "training_failed", "param": None,
                     "message": f"the training process ended with exit code {code}; see the worker log "
                                f"logs/{job_id}.log under the storage root"}
            connection.execute(jobs.update().where(mine).values(status="failed", error=error, worker=None,
                                                                heartbeat=None, finished_at=now()))
            add_event(connection, job_id, f"Job failed: {error['message']}", level="error")
