"""The FastAPI app of `tunesmith serve`: parse the request, call tunesmith.serving, write the
answer in OpenAI's wire format. Every error is an OpenAI error object, never a bare 500."""

from __future__ import annotations

import json

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException

from tunesmith.errors import TunesmithError
from tunesmith.serving.errors import ApiError, BadRequest, RateLimited
from tunesmith.serving.openai import (
    AdapterRequest,
    ChatRequest,
    CompletionRequest,
    EmbeddingRequest,
    FeedbackRequest,
    PredictRequest,
)
from tunesmith.serving.security import ApiKeys, BodyLimit, RateLimiter
from tunesmith.serving.service import Service

VERSION_HEADER = "x-tunesmith-model-version"
SUBJECT_HEADER = "x-tunesmith-subject"


def create_app(service: Service, keys: ApiKeys | None = None, rate: RateLimiter | None = None,
               max_body: int = 1_000_000) -> FastAPI:
    keys, rate = keys or ApiKeys(), rate or RateLimiter(None)
    app = FastAPI(title="tunesmith serve", docs_url=None, redoc_url=None)
    app.state.service = service
    app.add_middleware(BodyLimit, limit=max_body)
    _install_error_handlers(app)

    def guard(request: Request) -> None:
        caller = keys.check(request.headers.get("authorization"))
        rate.check(caller or (request.client.host if request.client else "local"))

    v1 = [Depends(guard)]

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/ready")
    async def ready():
        ok = service.engine.ready()
        return JSONResponse({"status": "ready" if ok else "loading"}, status_code=200 if ok else 503)

    @app.get("/metrics", dependencies=v1)
    async def metrics():
        return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", dependencies=v1)
    async def models():
        return await service.models()

    @app.get("/v1/models/{name:path}", dependencies=v1)
    async def model(name: str):
        return await service.model(name)

    @app.post("/v1/chat/completions", dependencies=v1)
    async def chat(body: ChatRequest, request: Request):
        if body.stream:
            return await _stream(service, "chat", body, request, service.chat_stream)
        return await _answer(service, "chat", body, request, service.chat)

    @app.post("/v1/completions", dependencies=v1)
    async def completions(body: CompletionRequest, request: Request):
        if body.stream:
            return await _stream(service, "completions", body, request, service.completion_stream)
        return await _answer(service, "completions", body, request, service.completion)

    @app.post("/v1/embeddings", dependencies=v1)
    async def embeddings(body: EmbeddingRequest, request: Request):
        return await _answer(service, "embeddings", body, request, service.embeddings)

    @app.post("/v1/predict", dependencies=v1)
    async def predict(body: PredictRequest, request: Request):
        return await _answer(service, "predict", body, request, service.predict)

    @app.post("/v1/adapters", dependencies=v1)
    async def add_adapter(body: AdapterRequest):
        return await service.add_adapter(body.name, body.path)

    @app.delete("/v1/adapters/{name:path}", dependencies=v1)
    async def remove_adapter(name: str):
        return service.remove_adapter(name)

    @app.post("/v1/feedback", dependencies=v1)
    async def feedback(body: FeedbackRequest):
        return service.feedback(body.completion_id, body.score)

    return app


def _subject(body, request: Request) -> str | None:
    return request.headers.get(SUBJECT_HEADER) or getattr(body, "user", None)


def _headers(call) -> dict:
    version = call.target.version if call.target else None
    return {VERSION_HEADER: version} if version else {}


async def _begin(service: Service, endpoint: str, body, request: Request, handler):
    """Start the call and run its handler: (call, result); a failure is counted with its status."""
    call = service.begin(endpoint, _subject(body, request))
    try:
        return call, await handler(call, body)
    except ApiError as err:
        service.end(call, err.status)
        raise
    except TunesmithError:
        service.end(call, 400)
        raise
    except Exception:
        service.end(call, 500)
        raise


async def _answer(service: Service, endpoint: str, body, request: Request, handler):
    call, answer = await _begin(service, endpoint, body, request, handler)
    service.end(call, 200)
    return JSONResponse(answer, headers=_headers(call))


async def _stream(service: Service, endpoint: str, body, request: Request, handler):
    """Server-sent events ending in [DONE]; a client that goes away cancels its generation."""
    call, chunks = await _begin(service, endpoint, body, request, handler)

    async def events():
        status = 200
        try:
            async for chunk in chunks:
                yield json.dumps(chunk, ensure_ascii=False)
            yield "[DONE]"
        except ApiError as err:
            status = err.status
            yield json.dumps(err.body())
            yield "[DONE]"
        except BaseException:  # cancelled by a disconnect, or a failure: counted, then passed on
            status = 499
            raise
        finally:
            await chunks.aclose()
            service.end(call, status)

    return EventSourceResponse(events(), headers=_headers(call), ping=15)


def _error(status: int, message: str, type_: str = "invalid_request_error", param=None, code=None,
           headers: dict | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError):
        headers = {"Retry-After": str(max(1, round(err.retry_after)))} if isinstance(err, RateLimited) else None
        return JSONResponse(err.body(), status_code=err.status, headers=headers)

    @app.exception_handler(TunesmithError)
    async def user_error(request: Request, err: TunesmithError):
        return JSONResponse(BadRequest(str(err)).body(), status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        first = err.errors()[0] if err.errors() else {}
        where = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(where) or None
        if first.get("type") == "json_invalid":
            return _error(400, "the request body is not valid JSON", code="invalid_json")
        if param is None:
            return _error(400, "the request body must be a JSON object, sent as Content-Type: application/json",
                          code="invalid_json")
        message = f"{param}: {first.get('msg', 'invalid value')}" if param else first.get("msg", "invalid request")
        code = "missing_required_parameter" if first.get("type") == "missing" else "invalid_value"
        return _error(400, message, param=param, code=code)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException):
        code = "not_found" if err.status_code == 404 else None
        return _error(err.status_code, str(err.detail), code=code, headers=getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def server_error(request: Request, err: Exception):
        return _error(500, f"internal error: {type(err).__name__}", type_="server_error", code="internal_error")
