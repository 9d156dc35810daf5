"""The web dashboard of `tunesmith server` (docs/dashboard.md): server-rendered page shells
(Jinja2) whose small scripts call only the public API (/v1 ...), as any script could. Logging
in with an API key opens a session (sessions.py); without configured keys the pages are open."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from tunesmith.server.dashboard.pages import pages_router
from tunesmith.server.dashboard.sessions import SessionAuth, Sessions

HERE = Path(__file__).parent


def mount_dashboard(app: FastAPI, keys) -> None:
    """Pages at /, their scripts at /static, logins at /login; `keys`: the server's ProjectKeys.
    Add it after the app's other middleware, so the session's key reaches them as a header."""
    sessions = Sessions()
    app.include_router(pages_router(keys, sessions))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(SessionAuth, sessions=sessions)
