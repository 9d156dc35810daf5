"""Dashboard logins: a browser that posted a valid API key gets a session cookie (a random id,
HttpOnly, SameSite=Strict) mapped here to the key and a CSRF token. `SessionAuth` turns that
cookie into the `Authorization: Bearer` of the browser's /v1 calls, so the pages use the same
public API as any script, and it refuses unsafe calls without the session's `x-csrf-token`.

Sessions live in the server's memory (one `tunesmith server` process serves the pages): a
restart logs everyone out, which is the safe direction. Starlette's SessionMiddleware would put
the API key itself into a (signed, readable) cookie; this keeps the key on the server."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

from starlette.responses import JSONResponse

COOKIE = "tunesmith_session"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
API_PATHS = ("/v1/", "/metrics")


@dataclass
class Session:
    key: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    expires: float = 0.0


class Sessions:
    """Session id -> Session, each valid for `ttl` seconds after its login."""

    def __init__(self, ttl: float = 12 * 3600):
        self.ttl, self._by_id, self._lock = ttl, {}, threading.Lock()

    def open(self, key: str) -> tuple[str, Session]:
        sid, session = secrets.token_urlsafe(32), Session(key, expires=time.time() + self.ttl)
        with self._lock:
            self._by_id[sid] = session
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        with self._lock:
            session = self._by_id.get(sid or "")
            if session and session.expires < time.time():
                del self._by_id[sid]
                return None
            return session

    def close(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)


def session_id(headers) -> str | None:
    """The session id in a request's Cookie header (`headers`: a Starlette Headers or ASGI list)."""
    raw = headers.get("cookie") if hasattr(headers, "get") else dict(headers).get(b"cookie", b"").decode("latin-1")
    if not raw:
        return None
    jar = SimpleCookie()
    jar.load(raw)
    return jar[COOKIE].value if COOKIE in jar else None


class SessionAuth:
    """ASGI middleware for /v1 and /metrics: a request without its own Authorization header but
    with a live session cookie is sent on as `Authorization: Bearer <the session's key>`; an unsafe
    method must then carry the session's CSRF token in `x-csrf-token` (403 otherwise)."""

    def __init__(self, app, sessions: Sessions):
        self.app, self.sessions = app, sessions

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(API_PATHS):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        session = None if b"authorization" in headers else self.sessions.get(session_id(scope["headers"]))
        if session is None:
            return await self.app(scope, receive, send)
        token = headers.get(b"x-csrf-token", b"").decode("latin-1")
        if scope["method"] in UNSAFE and not hmac.compare_digest(token, session.csrf):
            body = {"error": {"message": "missing or wrong x-csrf-token header for this session",
                              "type": "invalid_request_error", "param": None, "code": "csrf_failed"}}
            return await JSONResponse(body, status_code=403)(scope, receive, send)
        bearer = (b"authorization", f"Bearer {session.key}".encode("latin-1"))
        scope = {**scope, "headers": [*scope["headers"], bearer]}
        return await self.app(scope, receive, send)
