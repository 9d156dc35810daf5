"""The model registry of `tunesmith server` (docs/api.md): names, versions, aliases, splits,
rollback, the A/B report and per-version traffic; thin routes over tunesmith.serving.registry,
.ab and .stats. Without a registry every route answers 400 saying how to get one."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from tunesmith.jobs.errors import BadRequest, NotFound
from tunesmith.jobs.runs import RunsHome
from tunesmith.serving.ab import ab_report
from tunesmith.serving.registry import RegistryNotFound, as_percentages
from tunesmith.serving.stats import version_stats


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VersionBody(_Body):
    run: str
    note: str = ""
    promote: bool = False


class AliasBody(_Body):
    alias: str
    version: int | str


class PromoteBody(_Body):
    version: int | str


class SplitBody(_Body):
    weights: dict[str, float]


class RollbackBody(_Body):
    alias: str | None = None


def registry_router(service, home: RunsHome, caller) -> APIRouter:
    router = APIRouter(prefix="/v1/registry")

    def registry():
        if service.registry is None:
            raise BadRequest("this server has no model registry: start it with --db URL (a database "
                             "such as sqlite:///registry.db; docs/serving.md)", code="registry_not_configured")
        return service.registry

    def model(name: str) -> dict:
        return {"object": "registry.model", **found(registry().show, name)}

    @router.get("")
    def list_models(who: str = caller):
        return {"object": "list", "data": [{"object": "registry.model", **row} for row in registry().list()],
                "has_more": False}

    @router.get("/{name}")
    def show(name: str, who: str = caller):
        return model(name)

    @router.post("/{name}/versions")
    def add_version(name: str, body: VersionBody, who: str = caller):
        path = home.path_of(who, body.run)
        version = registry().add(name, path, note=body.note, promote=body.promote)
        return {**model(name), "version": version}

    @router.post("/{name}/aliases")
    def alias(name: str, body: AliasBody, who: str = caller):
        found(registry().alias, name, body.alias, body.version)
        return model(name)

    @router.post("/{name}/promote")
    def promote(name: str, body: PromoteBody, who: str = caller):
        found(registry().promote, name, body.version)
        return model(name)

    @router.put("/{name}/split")
    def split(name: str, body: SplitBody, who: str = caller):
        found(registry().split, name, as_percentages(body.weights))
        return model(name)

    @router.post("/{name}/rollback")
    def rollback(name: str, body: RollbackBody | None = None, who: str = caller):
        reference = f"{name}@{body.alias}" if body and body.alias else name
        now = found(registry().rollback, reference)
        return {**model(name), "rolled_back": reference, "now": now}

    @router.get("/{name}/ab")
    def ab(name: str, who: str = caller):
        return {"object": "registry.ab_report", **found(ab_report, registry(), name, None)}

    @router.get("/{name}/stats")
    def stats(name: str, bucket: int = 60, who: str = caller):
        return found(version_stats, registry(), name, bucket)

    return router


def found(call, *args):
    """call(*args), an unknown name or version answering 404."""
    try:
        return call(*args)
    except RegistryNotFound as err:
        raise NotFound(str(err), "name") from None
