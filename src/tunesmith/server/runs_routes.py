"""Runs of `tunesmith server` (docs/api.md): list, one run, its metric series, a comparison;
thin routes over tunesmith.jobs.runs."""

from __future__ import annotations

from fastapi import APIRouter

from tunesmith.jobs.runs import RunsHome


def runs_router(home: RunsHome, caller) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get("/runs")
    def list_runs(limit: int = 20, after: str | None = None, who: str = caller):
        return home.list(who, limit, after)

    @router.get("/runs/compare")  # before /runs/{run_id}, which would take "compare" as an id
    def compare(ids: str = "", who: str = caller):
        return home.compare(who, [i.strip() for i in ids.split(",")])

    @router.get("/runs/{run_id}")
    def get_run(run_id: str, who: str = caller):
        return home.get(who, run_id)

    @router.get("/runs/{run_id}/metrics")
    def metrics(run_id: str, who: str = caller):
        return home.metrics(who, run_id)

    return router
