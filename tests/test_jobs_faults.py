"""Faults of the jobs service, with real processes: `tunesmith server` (and its worker) killed
with -9 mid-job and started again loses no job, file or event, and the job resumes from its
checkpoint to the same adapter as an uninterrupted run; two workers on one PostgreSQL queue
run each of four jobs exactly once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import openai
import sqlalchemy as sa
import torch

from jobs_helpers import ROWS, jsonl, tiny_job, wait_for
from postgres import postgres_db, postgres_server  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server(db: str, storage: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tunesmith.cli.main", "server", "--db", db, "--storage",
                                 str(storage), "--port", str(port), "--stale-after", "3"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)

    def up():
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        except httpx.HTTPError:
            return False
    wait_for(up, timeout=300, what="tunesmith server to start")
    return proc


def _snapshot(client, job_id: str) -> tuple[set, set, set]:
    return ({f.id for f in client.files.list()}, {j.id for j in client.fine_tuning.jobs.list()},
            {e.id for e in client.fine_tuning.jobs.list_events(job_id, limit=100)})


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter" / "adapter_model.safetensors"))


def test_a_killed_server_and_worker_lose_nothing_and_the_job_resumes_to_the_same_adapter(tmp_path, tiny_model_dir):
    import tunesmith
    from tunesmith.config import validate_config
    from tunesmith.jobs import tables
    from tunesmith.jobs.store import Store
    from tunesmith.runs.lock import read_owner

    db, storage, port = f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path / "storage", _free_port()
    first = _server(db, storage, port, tmp_path / "server.log")
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0)
    try:
        uploaded = client.files.create(file=("train.jsonl", jsonl(ROWS)), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=str(tiny_model_dir), training_file=uploaded.id, seed=5,
                                             extra_body={"tunesmith": tiny_job(200, 20)})

        def past_a_checkpoint():  # a checkpoint, and a step trained after it that is lost with the kill
            steps = [e.data["step"] for e in client.fine_tuning.jobs.list_events(job.id, limit=100)
                     if e.type == "metrics"]
            checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
            return checkpoints and steps and max(steps) > checkpoints[0].step_number
        wait_for(past_a_checkpoint, timeout=400, what="a checkpoint and a step after it")
        before = _snapshot(client, job.id)
        # a tiny model trains ~10 steps/s on an idle machine, and its events reach the store in bursts:
        # 200 steps leave time to kill it mid-run
        assert client.fine_tuning.jobs.retrieve(job.id).status == "running", "the job ended before the kill"
        first.send_signal(signal.SIGKILL)
        first.wait()
        run = storage / "runs" / job.id
        wait_for(lambda: read_owner(run) is None or read_owner(run).alive() is False, timeout=30,
                 what="the training to end with its worker")
    finally:
        first.kill()

    config = Store(db, storage).one(sa.select(tables.jobs.c.config).where(tables.jobs.c.id == job.id))["config"]
    config["output"] = {"dir": str(tmp_path / "uninterrupted")}
    reference = threading.Thread(target=tunesmith.train, args=(validate_config(config),))
    reference.start()  # the same job without a kill, trained meanwhile
    second = _server(db, storage, port, tmp_path / "server.log")
    try:
        files, jobs, events = _snapshot(client, job.id)
        assert before[0] <= files and before[1] <= jobs and before[2] <= events  # nothing lost
        done = wait_for(lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status in ("succeeded", "failed")
                        and j, timeout=400, what="the resumed job to finish")
        assert done.status == "succeeded", done.error
        messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
        assert any("stopped answering" in m for m in messages)
        assert any(m.startswith("resuming from checkpoint-") for m in messages)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    reference.join()
    resumed, whole = _weights(storage / "runs" / job.id), _weights(tmp_path / "uninterrupted")
    assert resumed.keys() == whole.keys()
    for key in whole:
        torch.testing.assert_close(resumed[key], whole[key], atol=1e-6, rtol=0)


def test_two_workers_on_postgresql_run_each_of_four_jobs_exactly_once(postgres_db, tmp_path,  # noqa: F811
                                                                      tiny_model_dir):
    from tunesmith.jobs import files, jobs
    from tunesmith.jobs.store import Store
    from tunesmith.jobs.tables import events
    from tunesmith.jobs.worker import Worker

    store = Store(postgres_db, tmp_path / "storage")
    upload = files.upload(store, "p", "t.jsonl", "fine-tune", jsonl(ROWS))
    ids = [jobs.create(store, "p", {"model": str(tiny_model_dir), "training_file": upload["id"],
                                    "tunesmith": tiny_job(2, 2)})["id"] for _ in range(4)]
    pool = [Worker(Store(postgres_db, tmp_path / "storage"), name=f"w{i}", heartbeat=0.3, poll=0.2) for i in range(2)]
    threads = [threading.Thread(target=w.run, kwargs={"once": True}) for w in pool]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    with store.read() as connection:
        rows = connection.execute(sa.select(events.c.job_id, events.c.message).where(
            events.c.message.like("Job started on worker%"))).all()
    assert sorted(job_id for job_id, _ in rows) == sorted(ids)  # each job started exactly once
    assert {jobs.get(store, "p", i)["status"] for i in ids} == {"succeeded"}
    assert {m.rsplit(" ", 1)[-1] for _, m in rows} == {"w0", "w1"}  # both workers took jobs
