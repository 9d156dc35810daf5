"""The dashboard's pages: each route renders a shell (layout, navigation, the CSRF token) whose
script fetches its data from the API. Every page needs a login when API keys are configured."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from tunesmith.server.dashboard.sessions import COOKIE, Sessions, session_id
from tunesmith.serving.errors import Unauthorized

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
PAGES = [("/", "Jobs"), ("/jobs/new", "New job"), ("/data", "Data"), ("/runs", "Runs"),
         ("/playground", "Playground"), ("/registry", "Registry")]


def pages_router(keys, sessions: Sessions) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def page(template: str, title: str, **context):
        def render(request: Request):
            session = sessions.get(session_id(request.headers))
            if keys.required and session is None:
                return RedirectResponse("/login", status_code=303)
            values = {name: request.path_params.get(name, value) for name, value in context.items()}
            return TEMPLATES.TemplateResponse(request, template, {
                "title": title, "pages": PAGES, "csrf": session.csrf if session else "",
                "logged_in": session is not None, **values})
        return render

    router.get("/")(page("jobs.html", "Jobs"))
    router.get("/jobs/new")(page("new_job.html", "New job"))
    router.get("/jobs/{job_id}")(page("job.html", "Job", job_id=""))
    router.get("/data")(page("data.html", "Data"))
    router.get("/runs")(page("runs.html", "Runs"))
    router.get("/playground")(page("playground.html", "Playground"))
    router.get("/registry")(page("registry.html", "Registry"))

    @router.get("/login")
    def login_page(request: Request):
        if not keys.required:
            return RedirectResponse("/", status_code=303)
        return TEMPLATES.TemplateResponse(request, "login.html", {"title": "Log in", "error": None})

    @router.post("/login")
    def login(request: Request, key: str = Form("")):
        try:
            keys.project(f"Bearer {key.strip()}")
        except Unauthorized:
            return TEMPLATES.TemplateResponse(request, "login.html", {"title": "Log in", "error": "This API key is "
                                              "not valid on this server."}, status_code=401)
        sid, _ = sessions.open(key.strip())
        answer = RedirectResponse("/", status_code=303)
        answer.set_cookie(COOKIE, sid, httponly=True, samesite="strict", max_age=int(sessions.ttl), path="/")
        return answer

    @router.post("/logout")
    def logout(request: Request, csrf: str = Form("")):
        sid = session_id(request.headers)
        session = sessions.get(sid)
        if session is not None and session.csrf == csrf:
            sessions.close(sid)
        answer = RedirectResponse("/login" if keys.required else "/", status_code=303)
        answer.delete_cookie(COOKIE, path="/")
        return answer

    return router
