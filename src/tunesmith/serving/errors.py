"""Errors a client can cause, each with its HTTP status and OpenAI error type and code."""

from __future__ import annotations

from tunesmith.errors import TunesmithError


class ApiError(TunesmithError):
    status = 400
    type = "invalid_request_error"
    code: str | None = None

    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.param = param
        if code:
            self.code = code

    def body(self) -> dict:
        return {"error": {"message": str(self), "type": self.type, "param": self.param, "code": self.code}}


class BadRequest(ApiError):
    code = "invalid_value"


class ContextTooLong(ApiError):
    code = "context_length_exceeded"


class ModelNotFound(ApiError):
    status = 404
    code = "model_not_found"


class ModelNotReady(ApiError):
    status = 409
    code = "model_not_ready"


class Unauthorized(ApiError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class RateLimited(ApiError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, retry_after: float = 1.0):
        super().__init__(message)
        self.retry_after = retry_after


class Overloaded(RateLimited):
    code = "server_overloaded"


class TooLarge(ApiError):
    status = 413
    code = "request_too_large"


class GenerationFailed(ApiError):
    """The engine failed on a batch (a server fault, not the client's): 500 in OpenAI's format."""

    status = 500
    type = "server_error"
    code = "generation_failed"
