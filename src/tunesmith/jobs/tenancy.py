"""Projects: each API key belongs to one project and sees only that project's files, jobs and
fine-tuned models. Keys are kept only as SHA-256 hashes (tunesmith.serving.security.hash_key)."""

from __future__ import annotations

import hmac
from contextvars import ContextVar
from pathlib import Path

from tunesmith.errors import ConfigError
from tunesmith.jobs.store import DEFAULT_PROJECT
from tunesmith.serving.errors import Unauthorized
from tunesmith.serving.security import ApiKeys, hash_key

# The project of the request being served: set by the server for each request, read where a
# model name is resolved (a fine-tuned model is found only in its own project).
current_project: ContextVar[str] = ContextVar("current_project", default=DEFAULT_PROJECT)


class ProjectKeys:
    """`--api-key PROJECT:KEY` options and a keys file with `PROJECT KEY` or `PROJECT sha256:HEX`
    lines (`#` starts a comment). Without keys, every caller is in the project `default`."""

    def __init__(self, projects: dict[str, str] | None = None):
        self.projects = dict(projects or {})  # key hash -> project

    @classmethod
    def load(cls, keys: list[str] = (), keys_file: str | Path | None = None) -> ProjectKeys:
        projects = {}
        for given in keys:
            project, sep, key = given.partition(":")
            if not sep or not project or not key:
                raise ConfigError(f"--api-key {given[:12]}...: give PROJECT:KEY, e.g. --api-key team-a:sk-123")
            projects[hash_key(key)] = project
        if keys_file:
            path = Path(keys_file)
            if not path.is_file():
                raise ConfigError(f"--api-keys-file {path}: no such file")
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                parts = line.split("#", 1)[0].split()
                if not parts:
                    continue
                if len(parts) != 2:
                    raise ConfigError(f"{path}:{number}: give `PROJECT KEY` or `PROJECT sha256:HEX`")
                project, key = parts
                digest = key[7:].lower() if key.startswith("sha256:") else hash_key(key)
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                    raise ConfigError(f"{path}:{number}: sha256: needs 64 hex digits")
                projects[digest] = project
        return cls(projects)

    @property
    def required(self) -> bool:
        return bool(self.projects)

    def api_keys(self) -> ApiKeys:
        return ApiKeys(set(self.projects))

    def project(self, authorization: str | None) -> str:
        """The caller's project, or Unauthorized."""
        if not self.required:
            return DEFAULT_PROJECT
        scheme, _, key = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("missing API key: send it as 'Authorization: Bearer <key>'")
        digest = hash_key(key.strip())
        for known, project in self.projects.items():
            if hmac.compare_digest(digest, known):
                return project
        raise Unauthorized("invalid API key")
