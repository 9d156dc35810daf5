"""The gRPC front end of `tunesmith serve` (grpcio, asyncio): Predict, Generate and
GenerateStream (protos/inference.proto). Thin, like the HTTP app: each call becomes the same
OpenAI-shaped request the HTTP app parses, goes to the same Service (router, registry versions
and splits, engine, Prometheus metrics, with endpoints `grpc_predict`, `grpc_generate`), and
its answer is written back as protobuf. API keys come as `authorization: Bearer KEY` metadata.
Client errors are gRPC statuses named after their HTTP ones (400 INVALID_ARGUMENT, 404
NOT_FOUND, ...), never INTERNAL; messages go as protobuf, never pickle."""

from __future__ import annotations

import asyncio
import json

import grpc
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.struct_pb2 import Struct
from pydantic import ValidationError

from tunesmith.errors import TunesmithError
from tunesmith.server.protos import inference_pb2 as pb
from tunesmith.server.protos import inference_pb2_grpc as pb_grpc
from tunesmith.serving.errors import ApiError
from tunesmith.serving.openai import TOOL_CHOICES, ChatRequest, PredictRequest, StreamOptions
from tunesmith.serving.security import ApiKeys, RateLimiter
from tunesmith.serving.service import Service

SUBJECT = "x-tunesmith-subject"
VERSION = "x-tunesmith-model-version"
CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
         404: grpc.StatusCode.NOT_FOUND, 409: grpc.StatusCode.FAILED_PRECONDITION,
         413: grpc.StatusCode.RESOURCE_EXHAUSTED, 429: grpc.StatusCode.RESOURCE_EXHAUSTED,
         500: grpc.StatusCode.INTERNAL}


class Inference(pb_grpc.InferenceServicer):
    def __init__(self, service: Service, keys: ApiKeys | None = None, rate: RateLimiter | None = None):
        self.service, self.keys, self.rate = service, keys or ApiKeys(), rate or RateLimiter(None)

    async def Predict(self, request, context):
        call, answer = await self._begin(context, "grpc_predict", request.user, _predict_request, request,
                                         self.service.predict)
        self.service.end(call, 200)
        return pb.PredictReply(model=answer["model"], task=answer["task"] or "", labels=answer["labels"] or [],
                               rows=[ParseDict(_plain(r), Struct()) for r in answer["data"]])

    async def Generate(self, request, context):
        call, answer = await self._begin(context, "grpc_generate", request.user, _chat_request, request,
                                         self.service.chat)
        self.service.end(call, 200)
        choice = answer["choices"][0]
        message = choice["message"]
        return pb.GenerateReply(id=answer["id"], model=answer["model"], text=message["content"] or "",
                                tool_calls=_tool_calls(message.get("tool_calls")),
                                finish_reason=choice["finish_reason"], usage=pb.Usage(**answer["usage"]))

    async def GenerateStream(self, request, context):
        call, chunks = await self._begin(context, "grpc_generate", request.user, _stream_request, request,
                                         self.service.chat_stream)
        status = 200
        try:
            async for chunk in chunks:
                out = _chunk(chunk)
                if out is not None:
                    yield out
        except ApiError as err:
            status = err.status
            await context.abort(CODES.get(err.status, grpc.StatusCode.INTERNAL), str(err))
        except BaseException:  # the client went away (cancelled), or a failure: counted, passed on
            status = 499 if status == 200 else status
            raise
        finally:
            await chunks.aclose()
            self.service.end(call, status)

    async def _begin(self, context, endpoint: str, user: str, parse, request, handler):
        """Check the key and rate, parse, resolve and start the call: (call, result). A failure is
        counted with its HTTP status and ends the RPC with the matching gRPC status."""
        metadata = dict(context.invocation_metadata() or ())
        try:
            caller = self.keys.check(metadata.get("authorization"))
            self.rate.check(caller or context.peer())
        except ApiError as err:
            await context.abort(CODES[err.status], str(err))
        call = self.service.begin(endpoint, metadata.get(SUBJECT) or user or None)
        try:
            parsed = parse(request)
        except ValueError as err:  # pydantic's ValidationError is one
            self.service.end(call, 400)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _message(err))
        try:
            result = await handler(call, parsed)
        except ApiError as err:
            self.service.end(call, err.status)
            await context.abort(CODES.get(err.status, grpc.StatusCode.INTERNAL), str(err))
        except TunesmithError as err:
            self.service.end(call, 400)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        except asyncio.CancelledError:
            self.service.end(call, 499)
            raise
        except Exception:
            self.service.end(call, 500)
            raise
        if call.target is not None and call.target.version:
            context.set_trailing_metadata(((VERSION, call.target.version),))
        return call, result


def _message(err: Exception) -> str:
    if isinstance(err, ValidationError) and err.errors():
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg', 'invalid value')}" if where else str(first.get("msg"))
    return str(err)


def _chat_request(request) -> ChatRequest:
    """The OpenAI chat request the HTTP app would parse for the same call."""
    body = {"model": request.model, "stop": list(request.stop) or None, "user": request.user or None,
            "messages": [{"role": m.role, "content": m.content, "tool_call_id": m.tool_call_id or None}
                         for m in request.messages]}
    for name in ("max_tokens", "temperature", "top_p", "seed", "parallel_tool_calls"):
        if request.HasField(name):
            body[name] = getattr(request, name)
    if request.tools_json:
        try:
            body["tools"] = json.loads(request.tools_json)
        except ValueError as err:
            raise ValueError(f"tools_json is not valid JSON: {err}") from None
    if request.tool_choice:
        choice = request.tool_choice
        body["tool_choice"] = choice if choice in TOOL_CHOICES else {"type": "function", "function": {"name": choice}}
    return ChatRequest.model_validate(body)


def _stream_request(request) -> ChatRequest:
    req = _chat_request(request)
    req.stream_options = StreamOptions(include_usage=True)
    return req


def _predict_request(request) -> PredictRequest:
    return PredictRequest(model=request.model, input=[MessageToDict(r) for r in request.rows],
                          user=request.user or None)


def _tool_calls(calls: list[dict] | None) -> list:
    return [pb.ToolCall(id=c.get("id") or "", name=c["function"]["name"], arguments=c["function"]["arguments"])
            for c in calls or []]


def _chunk(chunk: dict):
    """A chat.completion.chunk as a GenerateChunk; None for one that carries nothing."""
    out = pb.GenerateChunk(id=chunk["id"], model=chunk["model"])
    if chunk.get("usage"):
        out.usage.CopyFrom(pb.Usage(**chunk["usage"]))
    for choice in chunk["choices"]:
        delta = choice.get("delta", {})
        out.text += delta.get("content") or ""
        out.tool_calls.extend(_tool_calls(delta.get("tool_calls")))
        out.finish_reason = choice.get("finish_reason") or out.finish_reason
    return out if (out.text or out.tool_calls or out.finish_reason or out.HasField("usage")) else None


def _plain(row: dict) -> dict:
    """A predict row as JSON values (what the HTTP answer holds)."""
    return json.loads(json.dumps(row, default=float))


async def start_grpc(service: Service, host: str, port: int, keys: ApiKeys | None = None,
                     rate: RateLimiter | None = None, max_body: int = 1_000_000) -> tuple[grpc.aio.Server, int]:
    """A started gRPC server on host:port (0: any free port) in the running event loop, and its port.
    Messages over max_body bytes are refused with RESOURCE_EXHAUSTED, as HTTP answers 413."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", max_body)])
    pb_grpc.add_InferenceServicer_to_server(Inference(service, keys, rate), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return server, bound


def run_with_http(app, service: Service, host: str, port: int, grpc_port: int, keys: ApiKeys | None = None,
                  rate: RateLimiter | None = None, max_body: int = 1_000_000) -> None:
    """HTTP (uvicorn) and gRPC in one event loop, over one Service, until interrupted."""
    import uvicorn

    async def main():
        server, _ = await start_grpc(service, host, grpc_port, keys, rate, max_body)
        try:
            await uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning")).serve()
        finally:
            await server.stop(grace=2)

    asyncio.run(main())
