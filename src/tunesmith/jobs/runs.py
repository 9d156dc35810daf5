"""The runs a server shows: every run below its runs root (trained from the CLI, shared by every
project, like the models folder) and the runs of the caller's project's jobs, as API objects
(tunesmith.runs.listing). A job's run reads its job's final status when the job ended without
its run saying so (a worker killed before the run wrote STATUS), so no run stays `running`."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tunesmith.jobs.errors import BadRequest, NotFound
from tunesmith.jobs.jobs import FINAL
from tunesmith.jobs.store import Store
from tunesmith.jobs.tables import jobs
from tunesmith.runs import listing
from tunesmith.runs.rundir import RunDir


class RunsHome:
    def __init__(self, store: Store, runs_root: str | Path | None = None):
        self.store = store
        self.root = Path(runs_root).expanduser().resolve() if runs_root is not None else None

    def _job_runs(self, project: str) -> dict[Path, dict]:
        """{run directory: job row (id, status)} of the project's jobs whose run exists."""
        with self.store.read() as connection:
            rows = connection.execute(sa.select(jobs.c.id, jobs.c.status).where(jobs.c.project == project)).all()
        found = {}
        for job_id, status in rows:
            path = self.store.run_dir(job_id)
            if RunDir.is_run(path):
                found[path] = {"id": job_id, "status": status}
        return found

    def _paths(self, project: str) -> list[tuple[Path, dict | None]]:
        shared = [(p, None) for p in listing.runs_below(self.root)] if self.root is not None else []
        return shared + list(self._job_runs(project).items())

    @staticmethod
    def _object(path: Path, job: dict | None, detail: bool = False) -> dict:
        job_id = job["id"] if job else None
        run = listing.run_detail(path, job_id) if detail else listing.run_object(path, job_id)
        if job and run["status"] == "running" and job["status"] in FINAL:
            run["status"] = job["status"]
        return run

    def list(self, project: str, limit: int = 20, after: str | None = None) -> dict:
        if not 1 <= limit <= 1000:
            raise BadRequest("limit must be between 1 and 1000", "limit")
        runs = sorted((self._object(p, job) for p, job in self._paths(project)),
                      key=lambda r: (r["created_at"], r["id"]), reverse=True)
        if after is not None:
            ids = [r["id"] for r in runs]
            if after not in ids:
                raise NotFound(f"no run with id {after!r}", "after")
            runs = runs[ids.index(after) + 1:]
        page = runs[:limit]
        return {"object": "list", "data": page, "has_more": len(runs) > limit,
                "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None}

    def find(self, project: str, run_id: str) -> tuple[Path, dict | None]:
        for path, job in self._paths(project):
            if listing.run_id(path) == run_id:
                return path, job
        raise NotFound(f"no run with id {run_id!r} (GET /v1/runs lists them)", "run_id")

    def get(self, project: str, run_id: str) -> dict:
        return self._object(*self.find(project, run_id), detail=True)

    def metrics(self, project: str, run_id: str) -> dict:
        path, job = self.find(project, run_id)
        status = self._object(path, job)["status"]
        return {"object": "run.metrics", "id": run_id, "series": listing.series(path),
                "progress": listing.progress(path, status)}

    def compare(self, project: str, ids: list[str]) -> dict:
        ids = [i for i in ids if i]
        if not ids:
            raise BadRequest("ids: give run ids separated by commas, e.g. ?ids=RUN_A,RUN_B", "ids")
        return listing.compare([self.find(project, i)[0] for i in ids])

    def path_of(self, project: str, reference: str) -> Path:
        """A run the caller sees, by id or by its directory's path (for registering a version);
        never a folder outside the runs root and the project's jobs."""
        wanted = Path(reference).expanduser().resolve() if "/" in reference else None
        for path, _ in self._paths(project):
            if path.resolve() == wanted or listing.run_id(path) == reference:
                return path
        raise NotFound(f"no run {reference!r} among this server's runs (GET /v1/runs lists them)", "run")

