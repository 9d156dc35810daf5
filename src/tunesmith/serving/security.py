"""API keys (kept only as SHA-256 hashes), per-key rate limits, a request body limit, and the
rule that a server reachable from other machines must ask for keys."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tunesmith.errors import ConfigError
from tunesmith.serving.errors import RateLimited, TooLarge, Unauthorized

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_digest(key: str, where: str) -> str:
    """The SHA-256 hex digest of a key given plain or as `sha256:<hex>` (so a file need not hold secrets)."""
    if not key.startswith("sha256:"):
        return hash_key(key)
    digest = key[7:].lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ConfigError(f"{where}: sha256: needs 64 hex digits")
    return digest


def keys_file_lines(keys_file: str | Path) -> Iterator[tuple[str, str]]:
    """(file:line, text) of each entry of a keys file; `#` starts a comment, blank lines are skipped."""
    path = Path(keys_file)
    if not path.is_file():
        raise ConfigError(f"--api-keys-file {path}: no such file")
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if text:
            yield f"{path}:{number}", text


class ApiKeys:
    """Keys from --api-key and a keys file: one per line, plain or as `sha256:<hex>` (so the
    file need not hold secrets); `#` starts a comment. Plain keys are hashed on reading."""

    def __init__(self, hashes: set[str] = frozenset()):
        self.hashes = set(hashes)

    @classmethod
    def load(cls, keys: list[str] = (), keys_file: str | Path | None = None) -> ApiKeys:
        hashes = {hash_key(k) for k in keys if k}
        if keys_file:
            hashes.update(key_digest(text, where) for where, text in keys_file_lines(keys_file))
        return cls(hashes)

    @property
    def required(self) -> bool:
        return bool(self.hashes)

    def check(self, authorization: str | None) -> str | None:
        """The caller's identity (its key's hash) or Unauthorized; None when no keys are set."""
        if not self.required:
            return None
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("missing API key: send it as 'Authorization: Bearer <key>'")
        digest = hash_key(key.strip())
        if not any(hmac.compare_digest(digest, known) for known in self.hashes):
            raise Unauthorized("invalid API key")
        return digest


class RateLimiter:
    """A token bucket per caller: `per_minute` requests a minute, bursts up to `burst`.
    Written here because it is a few lines and needs no shared state beyond this process."""

    def __init__(self, per_minute: float | None, burst: int | None = None):
        self.rate = (per_minute or 0) / 60
        self.burst = burst or max(1, int(per_minute or 1))
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def check(self, caller: str) -> None:
        if not self.rate:
            return
        now = time.monotonic()
        with self.lock:
            tokens, last = self.buckets.get(caller, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self.buckets[caller] = (tokens, now)
                raise RateLimited("rate limit reached for this API key; retry later",
                                  retry_after=(1 - tokens) / self.rate)
            self.buckets[caller] = (tokens - 1, now)


def check_bind(host: str, keys: ApiKeys) -> None:
    """Listening beyond loopback is allowed only with API keys."""
    if keys.required or host in LOOPBACK_NAMES:
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ConfigError(f"--host {host} makes the server reachable from other machines; give --api-key or "
                      "--api-keys-file, or keep the default --host 127.0.0.1")


class BodyLimit:
    """ASGI middleware: a body over `limit` bytes is refused with 413 in OpenAI's error format,
    whether it declares its length or streams chunks. Ours because FastAPI's own `max_body_size`
    exists only in its newest releases and answers in its own error shape."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _refuse(send, self.limit)
        body, more = b"", True
        while more:  # read the whole body first (at most `limit` bytes), then hand it on
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, _replay(message), send)
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                return await _refuse(send, self.limit)
        await self.app(scope, _replay({"type": "http.request", "body": body, "more_body": False}, receive), send)


def _replay(first: dict, then=None):
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return first
        return await then() if then else {"type": "http.disconnect"}
    return receive


async def _refuse(send, limit: int) -> None:
    body = json.dumps(TooLarge(f"request body is larger than {limit} bytes").body()).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
