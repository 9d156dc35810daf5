"""What each endpoint does, as library calls: resolve the model, build the prompt in the run's
own dialect, generate through the engine, and answer in OpenAI's response shapes (dicts that
the `openai` client parses). The FastAPI app only parses requests and writes these out."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from tunesmith.data.tool_calls import parse_tool_calls
from tunesmith.serving.catalog import Catalog, Target
from tunesmith.serving.engine import Chunk, Engine, Sampling
from tunesmith.serving.errors import BadRequest, ContextTooLong, GenerationFailed
from tunesmith.serving.metrics import ServerMetrics, labels
from tunesmith.serving.openai import ChatRequest, CompletionRequest, EmbeddingRequest, PredictRequest

DEFAULT_MAX_TOKENS = 256
MODEL_THREADS = 64  # calls that may wait on the engine at once (asyncio's own pool has cores + 4 threads)


@dataclass
class Call:
    """One request as the metrics and the registry see it."""

    endpoint: str
    subject: str | None
    target: Target | None = None
    status: int = 200
    started: float = field(default_factory=time.perf_counter)


class Service:
    def __init__(self, catalog: Catalog, engine: Engine, metrics: ServerMetrics | None = None, traffic=None,
                 model_threads: int = MODEL_THREADS):
        self.catalog, self.engine, self.traffic = catalog, engine, traffic  # traffic: a TrafficLog or None
        self.metrics = metrics or ServerMetrics(engine)
        # Engine calls block a thread until the model answers; predict calls waiting together are
        # combined into one batch, so the pool must hold as many waiting callers as a batch takes
        # (with asyncio's default pool of cores + 4 threads, batches stayed at about 6 rows).
        self._pool = ThreadPoolExecutor(model_threads, thread_name_prefix="tunesmith-call")

    async def _off_loop(self, fn, *args):
        """fn(*args) in a worker thread of the service's pool, off the event loop, in the caller's context
        (as asyncio.to_thread does: the request's project is a context variable)."""
        call = functools.partial(contextvars.copy_context().run, fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    @property
    def registry(self):
        return self.catalog.registry

    # --- bookkeeping ---------------------------------------------------------------------
    def _record(self, call: Call) -> None:
        seconds = time.perf_counter() - call.started
        known = call.target is not None and self.catalog.known(call.target.name)
        tags = labels(call.target, known)
        self.metrics.requests.labels(**tags, endpoint=call.endpoint, status=str(call.status)).inc()
        self.metrics.latency.labels(**tags, endpoint=call.endpoint).observe(seconds)
        if self.registry is not None and call.target is not None and call.target.version:
            self.registry.record_request(call.target.name, call.target.route_version, call.status,
                                         seconds * 1000, call.subject)

    def begin(self, endpoint: str, subject: str | None = None) -> Call:
        return Call(endpoint, subject)

    def end(self, call: Call, status: int) -> None:
        call.status = status
        self._record(call)

    async def resolve(self, call: Call, name: str, warm: bool = True) -> Target:
        """The target; its model (and adapter) loaded, in one trip to a worker thread."""
        return await self._off_loop(self._resolve, call, name, warm)

    def _resolve(self, call: Call, name: str, warm: bool) -> Target:
        call.target = self.catalog.resolve(name, call.subject)
        if warm and call.target.can_generate:
            self.engine.load(call.target)
            self.engine.dialect(call.target)
        return call.target

    # --- models --------------------------------------------------------------------------
    async def models(self) -> dict:
        return {"object": "list", "data": [self._model(t) for t in await asyncio.to_thread(self.catalog.list)]}

    async def model(self, name: str) -> dict:
        return self._model(await asyncio.to_thread(self.catalog.resolve, name))

    @staticmethod
    def _model(t: Target) -> dict:
        root = t.base if t.kind == "adapter" else t.name
        return {"id": t.label, "object": "model", "created": t.created, "owned_by": "tunesmith",
                "root": root, "parent": t.base if t.kind == "adapter" else None,
                "kind": t.kind, "task": t.task}

    # --- generation ----------------------------------------------------------------------
    def _sampling(self, req, prompt_len: int, context: int) -> Sampling:
        if prompt_len >= context:
            raise ContextTooLong(f"the prompt is {prompt_len} tokens; this model's context is {context} tokens",
                                 "messages" if isinstance(req, ChatRequest) else "prompt")
        room = context - prompt_len
        if req.limit is not None and req.limit > room:
            raise ContextTooLong(f"{prompt_len} prompt tokens + max_tokens {req.limit} exceed this model's context "
                                 f"of {context} tokens", "max_tokens")
        temperature = 1.0 if req.temperature is None else req.temperature
        return Sampling(req.limit or min(DEFAULT_MAX_TOKENS, room), temperature,
                        1.0 if req.top_p is None else req.top_p, tuple(req.stop or ()), req.seed,
                        req.wanted_logprobs)

    async def _generate(self, target: Target, prompts: list[list[int]], sampling: Sampling,
                        started: float | None = None) -> AsyncIterator[tuple[int, Chunk]]:
        """Chunks of every prompt's generation as they come; leaving early cancels them all.
        Time to first token counts from `started` (the request's arrival)."""
        loop, queue = asyncio.get_running_loop(), asyncio.Queue()
        tags, jobs = labels(target, self.catalog.known(target.name)), []

        def deliver(index: int):
            def put(chunk: Chunk) -> None:
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, (index, chunk))
                except RuntimeError:  # the event loop is gone: nobody is listening any more
                    for job in jobs:
                        job.cancel()
            return put

        start = started or time.perf_counter()
        last: dict[int, float] = {}
        try:
            for i, prompt in enumerate(prompts):
                seeded = sampling if sampling.seed is None else replace(sampling, seed=sampling.seed + i)
                jobs.append(await self._off_loop(self.engine.submit, target, prompt, seeded, deliver(i)))
            self.metrics.prompt_tokens.labels(**tags).inc(sum(len(p) for p in prompts))
            running = len(jobs)
            while running:
                index, chunk = await queue.get()
                now = time.perf_counter()
                if not last:
                    self.metrics.ttft.labels(**tags).observe(now - start)
                elif index in last and chunk.finish_reason not in ("cancelled", "error"):
                    self.metrics.itl.labels(**tags).observe(now - last[index])
                last[index] = now
                if chunk.finish_reason:
                    running -= 1
                    self.metrics.completion_tokens.labels(**tags).inc(chunk.tokens)
                if chunk.error:
                    raise GenerationFailed(f"generation failed: {chunk.error}")
                yield index, chunk
        finally:
            for job in jobs:
                job.cancel()

    def _chat_prompt(self, target: Target, req: ChatRequest) -> tuple[list[int], bool, str]:
        """(prompt ids, whether the reply may be a tool call, the reply's forced opening)."""
        messages = [m.plain() for m in req.messages]
        if messages[-1]["role"] == "assistant":
            raise BadRequest("the last message must not be the assistant's; it is what the model writes",
                             "messages")
        tools, start = req.tool_plan()
        return self.engine.dialect(target).chat_prompt(messages, tools, start), tools is not None, start

    async def chat(self, call: Call, req: ChatRequest) -> dict:
        target = await self.resolve(call, req.model)
        prompt, with_tools, start = self._chat_prompt(target, req)
        sampling = self._sampling(req, len(prompt), self.engine.dialect(target).context)
        texts, reasons, tokens, logprobs = await self._collect(target, [prompt] * (req.n or 1), sampling,
                                                               call.started)
        texts = [start + t for t in texts]
        choices = []
        for i, (text, reason) in enumerate(zip(texts, reasons)):
            calls = _calls(text, req) if with_tools else None
            message = {"role": "assistant", "content": None if calls else text}
            if calls:
                message["tool_calls"], reason = calls, "tool_calls"
            choices.append({"index": i, "message": message, "finish_reason": reason,
                            "logprobs": {"content": logprobs[i]} if req.logprobs else None})
        answer = self._finish(call, target, "chat.completion", choices, len(prompt), tokens)
        self._log(target, answer["id"], req, texts)
        return answer

    def _log(self, target: Target, completion_id: str, req: ChatRequest, replies: list[str]) -> None:
        if self.traffic is not None:
            self.traffic.chat(target.label, completion_id, [m.plain() for m in req.messages], replies)

    async def _collect(self, target, prompts, sampling, started=None):
        texts, reasons, tokens = [""] * len(prompts), [None] * len(prompts), [0] * len(prompts)
        logprobs = [[] for _ in prompts]
        async for i, chunk in self._generate(target, prompts, sampling, started):
            texts[i] += chunk.text
            tokens[i] = chunk.tokens
            reasons[i] = chunk.finish_reason or reasons[i]
            logprobs[i] += chunk.logprobs or []
        return texts, [_reason(r) for r in reasons], sum(tokens), logprobs

    def _finish(self, call: Call, target: Target, kind: str, choices: list, prompt_tokens: int, completion: int,
                ) -> dict:
        prefix = "chatcmpl" if kind == "chat.completion" else "cmpl"
        answer = {"id": f"{prefix}-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()),
                  "model": target.label, "choices": choices,
                  "usage": _usage(prompt_tokens, completion)}
        self._remember(call, answer["id"])
        return answer

    def _remember(self, call: Call, completion_id: str) -> None:
        target = call.target
        if self.registry is not None and target is not None and target.version:
            self.registry.record_completion(completion_id, target.name, target.route_version, call.subject)

    async def chat_stream(self, call: Call, req: ChatRequest) -> AsyncIterator[dict]:
        """ChatCompletionChunk dicts; with tools, the reply is held to the end to tell a tool call
        from text. Resolution errors are raised before the first chunk."""
        target = await self.resolve(call, req.model)
        prompt, with_tools, start = self._chat_prompt(target, req)
        sampling = self._sampling(req, len(prompt), self.engine.dialect(target).context)
        return self._stream_chat(call, target, req, prompt, sampling, with_tools, start)

    async def _stream_chat(self, call, target, req, prompt, sampling, hold: bool, start: str):
        cid, created, n = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), req.n or 1
        chunk = _chunk_maker(cid, created, target.label, "chat.completion.chunk", req)

        for i in range(n):
            yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        held, total = [start] * n, 0
        async for i, piece in self._generate(target, [prompt] * n, sampling, call.started):
            held[i] += piece.text
            scores = {"logprobs": {"content": piece.logprobs}} if piece.logprobs else {}
            if (piece.text or scores) and not hold and not piece.finish_reason:
                yield chunk([{"index": i, "delta": {"content": piece.text}, "finish_reason": None, **scores}])
            if piece.finish_reason:
                total += piece.tokens
                delta, reason = {}, _reason(piece.finish_reason)
                if hold:
                    calls = _calls(held[i], req)
                    if calls:
                        delta = {"tool_calls": [{"index": k, **c} for k, c in enumerate(calls)]}
                        reason = "tool_calls"
                    else:
                        delta = {"content": held[i]}
                elif piece.text:
                    delta = {"content": piece.text}
                yield chunk([{"index": i, "delta": delta, "finish_reason": reason, **scores}])
        if req.stream_options and req.stream_options.include_usage:
            yield chunk([], _usage(len(prompt), total))
        self._remember(call, cid)
        self._log(target, cid, req, held)

    # --- text completions ----------------------------------------------------------------
    def _completion_prompts(self, target: Target, req: CompletionRequest) -> tuple[list[list[int]], Sampling]:
        tokenizer = self.engine.dialect(target).tokenizer
        prompts = [tokenizer(p)["input_ids"] for p in req.prompts()]
        longest = max(len(p) for p in prompts)
        sampling = self._sampling(req, longest, self.engine.dialect(target).context)
        return [p for p in prompts for _ in range(req.n or 1)], sampling

    async def completion(self, call: Call, req: CompletionRequest) -> dict:
        if req.suffix:
            raise BadRequest("suffix is not supported", "suffix", "unsupported_parameter")
        target = await self.resolve(call, req.model)
        prompts, sampling = self._completion_prompts(target, req)
        texts, reasons, tokens, logprobs = await self._collect(target, prompts, sampling, call.started)
        sources = [p for p in req.prompts() for _ in range(req.n or 1)]
        choices = [{"index": i, "text": (src if req.echo else "") + text, "finish_reason": reason,
                    "logprobs": _legacy_logprobs(logprobs[i]) if req.logprobs is not None else None}
                   for i, (src, text, reason) in enumerate(zip(sources, texts, reasons))]
        prompt_tokens = sum(len(p) for p in prompts[::req.n or 1])
        return self._finish(call, target, "text_completion", choices, prompt_tokens, tokens)

    async def completion_stream(self, call: Call, req: CompletionRequest) -> AsyncIterator[dict]:
        target = await self.resolve(call, req.model)
        prompts, sampling = self._completion_prompts(target, req)
        return self._stream_completion(call, target, req, prompts, sampling)

    async def _stream_completion(self, call, target, req, prompts, sampling):
        cid, created, total = f"cmpl-{uuid.uuid4().hex}", int(time.time()), 0
        chunk = _chunk_maker(cid, created, target.label, "text_completion", req)

        async for i, piece in self._generate(target, prompts, sampling, call.started):
            total += piece.tokens if piece.finish_reason else 0
            if piece.text or piece.finish_reason or piece.logprobs:
                scores = _legacy_logprobs(piece.logprobs) if req.logprobs is not None else None
                yield chunk([{"index": i, "text": piece.text, "logprobs": scores,
                              "finish_reason": _reason(piece.finish_reason) if piece.finish_reason else None}])
        if req.stream_options and req.stream_options.include_usage:
            yield chunk([], _usage(sum(len(p) for p in prompts[::req.n or 1]), total))
        self._remember(call, cid)

    # --- encoders and task models --------------------------------------------------------
    async def embeddings(self, call: Call, req: EmbeddingRequest) -> dict:
        target = await self.resolve(call, req.model, warm=False)
        if target.kind == "adapter":
            raise BadRequest(f"model {target.label!r} is a LoRA adapter; embeddings come from encoder models",
                             "model")
        vectors, tokens = await self._off_loop(self.engine.embed, target, req.texts())
        return {"object": "list", "model": target.label, "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                "data": [{"object": "embedding", "index": i, "embedding": _encode(v, req.encoding_format)}
                         for i, v in enumerate(vectors)]}

    async def predict(self, call: Call, req: PredictRequest) -> dict:
        target = await self.resolve(call, req.model, warm=False)
        rows, label_map = await self._off_loop(self.engine.predict, target, req.rows())
        return {"object": "list", "model": target.label, "task": target.task,
                "labels": label_map, "data": [{k: v for k, v in r.items() if k != "origin"} for r in rows]}

    # --- adapters ------------------------------------------------------------------------
    async def add_adapter(self, name: str, path: str) -> dict:
        previous = self.catalog.named.get(name)
        target = self.catalog.add_under_root(name, path)
        try:
            await asyncio.to_thread(self.engine.load, target)
        except BaseException:  # not servable (e.g. its base cannot load): the name keeps what it had
            self.catalog.named.pop(name, None)
            if previous is not None:
                self.catalog.named[name] = previous
            raise
        if previous is not None and previous.key != target.key:
            self.engine.unload(previous)  # unloaded once its requests in flight are done
        return self._model(target)

    def remove_adapter(self, name: str) -> dict:
        target = self.catalog.remove(name)
        self.engine.unload(target)
        return {"id": name, "object": "model", "deleted": True}

    def feedback(self, completion_id: str, score: float) -> dict:
        if self.registry is None:
            raise BadRequest("feedback needs the model registry: start the server with --db", "completion_id")
        self.registry.record_feedback(completion_id, score)
        return {"object": "feedback", "completion_id": completion_id, "recorded": True}


def _encode(vector: list[float], how: str | None):
    """`base64` is what the openai client asks for by default: little-endian float32 bytes."""
    if how != "base64":
        return vector
    import base64
    import struct

    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _legacy_logprobs(entries: list[dict] | None) -> dict:
    """The completions endpoint's older shape: parallel lists."""
    entries, offset, offsets = entries or [], 0, []
    for e in entries:
        offsets.append(offset)
        offset += len(e["token"])
    return {"tokens": [e["token"] for e in entries], "token_logprobs": [e["logprob"] for e in entries],
            "top_logprobs": [{t["token"]: t["logprob"] for t in e["top_logprobs"]} for e in entries],
            "text_offset": offsets}


def _calls(text: str, req: ChatRequest) -> list[dict] | None:
    """The reply's tool calls; with parallel_tool_calls false, only the first."""
    calls = parse_tool_calls(text)
    return calls[:1] if calls and req.parallel_tool_calls is False else calls


def _reason(reason: str | None) -> str:
    return "length" if reason == "length" else "stop"


def _usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _chunk_maker(cid: str, created: int, model: str, obj: str, req):
    """Builds the stream's chunks: OpenAI's envelope, with `usage` only when the client asked."""
    with_usage = bool(req.stream_options and req.stream_options.include_usage)

    def chunk(choices, usage=None):
        out = {"id": cid, "object": obj, "created": created, "model": model, "choices": choices}
        if with_usage:
            out["usage"] = usage
        return out

    return chunk
