"""Dashboard logins without a browser (tunesmith.server.dashboard.sessions): pages need a session
when keys are configured, the session cookie authenticates /v1 calls only with its CSRF token on
unsafe methods, a script's own Authorization header is left alone, and logout ends the session."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

PAGES = ["/", "/jobs/new", "/jobs/ftjob-x", "/data", "/runs", "/playground", "/registry"]


def _client(tmp_path, keys) -> TestClient:
    from tunesmith.jobs.store import Store
    from tunesmith.jobs.tenancy import ProjectKeys
    from tunesmith.server.jobs_routes import create_server_app
    from tunesmith.serving.catalog import Catalog
    from tunesmith.serving.engine import LocalEngine
    from tunesmith.serving.service import Service

    store = Store(f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path / "storage")
    app = create_server_app(store, Service(Catalog(tmp_path / "models", []), LocalEngine()), ProjectKeys.load(keys))
    return TestClient(app, base_url="http://127.0.0.1")


def _csrf(page: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]*)"', page).group(1)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_redirects_to_the_login_without_a_session(tmp_path, path):
    answer = _client(tmp_path, ["team:key-a"]).get(path, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"


def test_a_login_opens_a_session_that_authenticates_the_pages_calls_with_its_csrf_token(tmp_path):
    client = _client(tmp_path, ["team:key-a"])
    wrong = client.post("/login", data={"key": "key-b"}, follow_redirects=False)
    assert wrong.status_code == 401 and "not valid" in wrong.text and "set-cookie" not in wrong.headers
    assert client.get("/v1/files").status_code == 401

    login = client.post("/login", data={"key": "key-a"}, follow_redirects=False)
    cookie = login.headers["set-cookie"]
    assert login.status_code == 303 and "HttpOnly" in cookie and "SameSite=strict" in cookie and "key-a" not in cookie
    page = client.get("/data")
    assert page.status_code == 200 and "Upload" in page.text
    token = _csrf(page.text)
    assert len(token) > 20

    assert client.get("/v1/files").json()["data"] == []  # a safe call needs only the cookie
    upload = {"files": {"file": ("a.jsonl", b'{"text": "hi"}\n')}, "data": {"purpose": "fine-tune"}}
    refused = client.post("/v1/files", **upload)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    assert client.post("/v1/files", headers={"x-csrf-token": "forged"}, **upload).status_code == 403
    assert client.post("/v1/files", headers={"x-csrf-token": token}, **upload).json()["status"] == "processed"
    # a script's own key is used as given, with no CSRF token (it sends no cookie in real life)
    assert client.get("/v1/files", headers={"Authorization": "Bearer key-b"}).status_code == 401

    logout = client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert logout.status_code == 303 and logout.headers["location"] == "/login"
    client.cookies.set("tunesmith_session", re.search(r"tunesmith_session=([^;]+)", cookie).group(1))
    assert client.get("/data", follow_redirects=False).status_code == 303  # the old cookie is dead
    assert client.get("/v1/files").status_code == 401


def test_without_keys_the_pages_are_open_and_need_no_login(tmp_path):
    client = _client(tmp_path, [])
    assert client.get("/runs").status_code == 200
    assert client.get("/login", follow_redirects=False).headers["location"] == "/"
    assert client.get("/static/vendor/chart.umd.min.js").text.startswith("/*!\n * Chart.js v4")
