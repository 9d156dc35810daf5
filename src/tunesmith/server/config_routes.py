"""The config schema and a config rendered (docs/api.md), for the new-job form; thin routes over
tunesmith.jobs.config_form."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from tunesmith.jobs.config_form import config_schema, render_config


class RenderBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: dict


def config_router(caller) -> APIRouter:
    router = APIRouter(prefix="/v1/config")
    schema = config_schema()  # the registries are filled at import: the schema never changes while serving

    @router.get("/schema")
    def get_schema(who: str = caller):
        return schema

    @router.post("/render")
    def render(body: RenderBody, who: str = caller):
        return render_config(body.config)

    return router
