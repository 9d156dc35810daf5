"""The jobs API's client errors, in OpenAI's error shape (tunesmith.serving.errors.ApiError)."""

from __future__ import annotations

from tunesmith.serving.errors import ApiError, BadRequest  # noqa: F401  (re-exported for jobs modules)


class NotFound(ApiError):
    """An id that does not exist, or that belongs to another project (the two look the same)."""

    status = 404
    code = "not_found"


class LimitReached(ApiError):
    """A project over its limit of active jobs. 429 like OpenAI's, but the client is told not to
    retry (x-should-retry: false): the limit frees only when a job ends."""

    status = 429
    type = "rate_limit_error"
    code = "too_many_active_jobs"
