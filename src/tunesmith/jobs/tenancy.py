"""Projects: each API key belongs to one project and sees only that project's files, jobs and
fine-tuned models. Keys are kept only as SHA-256 hashes (tunesmith.serving.security.hash_key)."""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path

from tunesmith.errors import ConfigError
from tunesmith.jobs.store import DEFAULT_PROJECT
from tunesmith.serving.security import ApiKeys, hash_key, key_digest, keys_file_lines

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
        for where, text in keys_file_lines(keys_file) if keys_file else ():
            parts = text.split()
            if len(parts) != 2:
                raise ConfigError(f"{where}: give `PROJECT KEY` or `PROJECT sha256:HEX`")
            projects[key_digest(parts[1], where)] = parts[0]
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
        return self.projects[self.api_keys().check(authorization)]
