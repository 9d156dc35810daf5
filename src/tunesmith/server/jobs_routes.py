"""The fine-tuning jobs API in OpenAI's wire format (files, fine_tuning.jobs, events, checkpoints),
as thin routes over tunesmith.jobs; and `create_server_app`, the one app of `tunesmith server`:
these routes and the inference endpoints of `tunesmith serve` on one port."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from tunesmith.jobs import files, jobs
from tunesmith.jobs.errors import BadRequest, LimitReached
from tunesmith.jobs.store import Store
from tunesmith.jobs.tenancy import ProjectKeys, current_project
from tunesmith.serving.errors import Unauthorized
from tunesmith.serving.security import BodyLimit, RateLimiter


def caller_project(keys: ProjectKeys, rate: RateLimiter):
    """The dependency every project-scoped route takes: the caller's project (401 without a
    valid key when keys are configured), after the rate limit."""
    def project(request: Request) -> str:
        found = keys.project(request.headers.get("authorization"))
        rate.check(found if keys.required else (request.client.host if request.client else "local"))
        return found

    return Depends(project)


def jobs_router(store: Store, caller, max_active: int) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.post("/files")
    def upload(file: UploadFile = File(...), purpose: str = Form(...), who: str = caller):
        return files.upload(store, who, file.filename or "file", purpose, file.file.read())

    @router.get("/files")
    def list_files(purpose: str | None = None, after: str | None = None, limit: int = 10000, order: str = "desc",
                   who: str = caller):
        return files.list_files(store, who, purpose, after, limit, order)

    @router.get("/files/{file_id}")
    def get_file(file_id: str, who: str = caller):
        return files.get(store, who, file_id)

    @router.get("/files/{file_id}/content")
    def file_content(file_id: str, who: str = caller):
        return Response(files.content(store, who, file_id), media_type="application/octet-stream")

    @router.post("/files/{file_id}/inspect")
    async def inspect(file_id: str, request: Request, who: str = caller):
        body = await _json_object(request, allow_empty=True)
        from starlette.concurrency import run_in_threadpool

        from tunesmith.jobs.inspect import inspect as inspect_file

        return await run_in_threadpool(inspect_file, store, who, file_id, body)

    @router.delete("/files/{file_id}")
    def delete_file(file_id: str, who: str = caller):
        return files.delete(store, who, file_id)

    @router.post("/fine_tuning/jobs")
    async def create(request: Request, who: str = caller):
        body = await _json_object(request)
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(jobs.create, store, who, body, max_active)

    @router.get("/fine_tuning/jobs")
    def list_jobs(request: Request, after: str | None = None, limit: int = 20, who: str = caller):
        metadata = {k[9:-1]: v for k, v in request.query_params.items() if k.startswith("metadata[") and k[-1] == "]"}
        return jobs.list_jobs(store, who, after, limit, metadata or None)

    @router.get("/fine_tuning/jobs/{job_id}")
    def get_job(job_id: str, who: str = caller):
        return jobs.get(store, who, job_id)

    for action in ("cancel", "pause", "resume"):
        router.post(f"/fine_tuning/jobs/{{job_id}}/{action}", name=action)(_control(store, getattr(jobs, action),
                                                                                    caller))

    @router.get("/fine_tuning/jobs/{job_id}/events")
    def events(job_id: str, after: str | None = None, limit: int = 20, who: str = caller):
        return jobs.list_events(store, who, job_id, after, limit)

    @router.get("/fine_tuning/jobs/{job_id}/checkpoints")
    def checkpoints(job_id: str, after: str | None = None, limit: int = 10, who: str = caller):
        return jobs.list_checkpoints(store, who, job_id, after, limit)

    return router


async def _json_object(request: Request, allow_empty: bool = False) -> dict:
    """The request's JSON object body (an empty body is {} when allowed), else 400."""
    if allow_empty and not await request.body():
        return {}
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_json")
    return body


def _control(store: Store, call, caller):
    def control(job_id: str, who: str = caller):
        return call(store, who, job_id)
    return control


class FineTunedModels:
    """The catalog's resolver of the caller's project's models: `ft:` names of its succeeded jobs and
    checkpoints, and the base models those jobs were trained from."""

    def __init__(self, store: Store):
        self.store = store

    def __call__(self, name: str):
        return jobs.model_path(self.store, name, current_project.get())

    def names(self) -> list[str]:
        project = current_project.get()
        return ([name for name, _ in jobs.fine_tuned_models(self.store, project)]
                + jobs.base_models(self.store, project))


class ProjectScope:
    """ASGI middleware: the caller's project for the request's model lookups (tenancy.current_project),
    and the request body limit: `max_upload` for file uploads, `max_body` for every other path."""

    def __init__(self, app, keys: ProjectKeys, max_body: int, max_upload: int):
        self.app, self.keys = app, keys
        self.limited, self.uploads = BodyLimit(app, max_body), BodyLimit(app, max_upload)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        try:
            current_project.set(self.keys.project(header or None))
        except Unauthorized:
            pass  # the route's own key check answers 401
        app = self.uploads if scope["path"].rstrip("/") == "/v1/files" else self.limited
        return await app(scope, receive, send)


def create_server_app(store: Store, service, keys: ProjectKeys | None = None, rate: RateLimiter | None = None,
                      max_body: int = 1_000_000, max_upload: int = 512 * 2**20,
                      max_active: int = jobs.DEFAULT_MAX_ACTIVE, runs_root: str | Path | None = None) -> FastAPI:
    """`runs_root`: a folder of runs (trained from the CLI) that GET /v1/runs shows every project
    besides the project's own jobs' runs. The model registry is the service's (service.registry)."""
    from tunesmith.jobs.runs import RunsHome
    from tunesmith.server.app import create_app
    from tunesmith.server.config_routes import config_router
    from tunesmith.server.registry_routes import registry_router
    from tunesmith.server.runs_routes import runs_router

    keys, rate = keys or ProjectKeys(), rate or RateLimiter(None)
    service.catalog.resolvers.append(FineTunedModels(store))
    app = create_app(service, keys.api_keys(), rate, max_body=max(max_body, max_upload))
    app.title = "tunesmith server"
    caller = caller_project(keys, rate)
    app.include_router(jobs_router(store, caller, max_active))
    home = RunsHome(store, runs_root)
    app.include_router(runs_router(home, caller))
    app.include_router(registry_router(service, home, caller))
    app.include_router(config_router(caller))
    app.add_middleware(ProjectScope, keys=keys, max_body=max_body, max_upload=max_upload)

    @app.exception_handler(LimitReached)
    async def limit_reached(request: Request, err: LimitReached):
        return JSONResponse(err.body(), status_code=err.status, headers={"x-should-retry": "false"})

    from tunesmith.server.dashboard import mount_dashboard

    mount_dashboard(app, keys)  # the pages at /, after the middleware above (docs/dashboard.md)
    return app
