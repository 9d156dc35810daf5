"""An engine on vLLM's own async engine, for GPUs (`tunesmith serve --engine vllm`,
`pip install 'tunesmith[vllm]'`).

One `AsyncLLM` (vllm.v1.engine.async_llm; `vllm.AsyncLLMEngine` in older releases) per base
model, with LoRA enabled: every LoRA-family run on that base is a `LoRARequest` on the request,
so vLLM batches requests for different adapters together and keeps its own adapter cache
(`max_loras` resident on the GPU). vLLM does the continuous batching, the KV cache (paged) and
the sampling; tunesmith keeps the rest: the run's dialect (chat template, system prompt, tools,
stop tokens) renders the prompt, which goes to vLLM as token ids (`TokensPrompt`), so a run
answers in its own template exactly as with the built-in engine.

vLLM's engines live on an event loop of their own in a background thread; `submit` hands each
request to that loop and returns at once, and `Job.cancel()` cancels the request's task, which
aborts it inside vLLM. Embeddings and predict (encoders, classification and QA runs) are served
by the built-in LocalEngine, which this engine holds for them.

Not covered (the gap, also in docs/serving.md): no CPU (vLLM needs a supported GPU), prompt
learning and non-LoRA PEFT runs (DoRA, AdaLoRA, IA3) are refused (serve them with the built-in
engine, or merge them with `tunesmith export --to merged`), and its tests run only where vllm
is importable, so CI on CPU does not exercise it.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from tunesmith.errors import TunesmithError
from tunesmith.serving.catalog import Target
from tunesmith.serving.dialect import Dialect
from tunesmith.serving.engine import Chunk, Engine, LocalEngine, Sampling
from tunesmith.serving.errors import BadRequest, Overloaded


class EngineUnavailable(TunesmithError):
    """The engine asked for cannot run here."""


def require_vllm():
    """The vllm module, or EngineUnavailable saying what to do (one line)."""
    try:
        import vllm
    except Exception as err:  # ImportError, or a broken CUDA setup raising at import
        raise EngineUnavailable(f"--engine vllm needs the vllm package and a GPU it supports, but vllm is not "
                                f"importable here ({type(err).__name__}: {err}); install it with "
                                "pip install 'tunesmith[vllm]', or serve with the built-in --engine local") from None
    return vllm


class VllmJob:
    def __init__(self, future):
        self.future = future

    def cancel(self) -> None:
        self.future.cancel()  # cancels the task in vLLM's loop, which aborts the request


class VllmEngine(Engine):
    def __init__(self, max_adapters: int = 8, max_queue: int = 64, max_lora_rank: int = 64,
                 gpu_memory_utilization: float = 0.9, **engine_args):
        require_vllm()
        self.max_adapters, self.max_queue, self.max_lora_rank = max_adapters, max_queue, max_lora_rank
        self.gpu_memory_utilization, self.engine_args = gpu_memory_utilization, engine_args
        self.local = LocalEngine(max_adapters=max_adapters, max_queue=max_queue)  # embeddings and predict
        self._engines: dict[str, object] = {}  # base weights dir -> AsyncLLM
        self._adapters: dict[str, tuple[int, str, str]] = {}  # target key -> (lora id, name, base key)
        self._dialects: dict[str, Dialect] = {}
        self._ids = itertools.count(1)
        self._running = 0
        self._lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="tunesmith-vllm")
        self._thread.start()

    # --- engines and adapters ------------------------------------------------------------
    def _weights(self, target: Target) -> Path:
        """The directory vLLM loads: an adapter's base, a run's whole model, or a model directory."""
        from tunesmith.models import resolve_model
        from tunesmith.runs.rundir import RunDir

        if target.kind == "adapter":
            return resolve_model(target.base)
        if RunDir.is_run(target.path):
            run = RunDir(target.path)
            if not run.model_dir.is_dir():
                raise BadRequest(f"model {target.label!r} is a PEFT run that is not LoRA; the vllm engine serves "
                                 "LoRA adapters and whole models (merge it: tunesmith export --to merged)", "model")
            return run.model_dir
        return resolve_model(target.path)

    def _engine(self, weights: Path):
        key = str(weights.resolve())
        with self._lock:
            if key not in self._engines:
                from vllm.engine.arg_utils import AsyncEngineArgs
                from vllm.v1.engine.async_llm import AsyncLLM

                args = AsyncEngineArgs(model=key, enable_lora=True, max_loras=self.max_adapters,
                                       max_lora_rank=self.max_lora_rank,
                                       gpu_memory_utilization=self.gpu_memory_utilization, **self.engine_args)
                self._engines[key] = self._call(_create(AsyncLLM, args))
            return self._engines[key]

    def _lora(self, target: Target):
        from vllm.lora.request import LoRARequest

        from tunesmith.adapters.sources import adapter_source

        source = adapter_source(target.path)
        if source.peft_type != "LORA" or source.config.method.name == "dora":
            raise BadRequest(f"model {target.label!r} is a {source.config.method.name} adapter; the vllm engine "
                             "serves LoRA adapters only (use --engine local)", "model")
        with self._lock:
            if target.key not in self._adapters:
                self._adapters[target.key] = (next(self._ids), target.name, str(self._weights(target).resolve()))
            lora_id, _, _ = self._adapters[target.key]
        return LoRARequest(target.key, lora_id, str(source.path))

    def _call(self, coroutine, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    # --- Engine --------------------------------------------------------------------------
    def dialect(self, target: Target) -> Dialect:
        key = target.key if target.kind == "adapter" else target.path
        if key not in self._dialects:
            engine = self._engine(self._weights(target))
            self._dialects[key] = Dialect.of(_chat_loaded(target), engine.model_config.max_model_len)
        return self._dialects[key]

    def submit(self, target: Target, prompt: list[int], sampling: Sampling, on_chunk: Callable[[Chunk], None]):
        if not target.can_generate:
            raise BadRequest(f"model {target.label!r} (task {target.task}) does not generate text; "
                             "use POST /v1/predict or /v1/embeddings", "model")
        engine, dialect = self._engine(self._weights(target)), self.dialect(target)
        lora = self._lora(target) if target.kind == "adapter" else None
        with self._lock:
            if self._running >= self.max_queue:
                raise Overloaded(f"the server is busy ({self._running} requests running); retry shortly")
            self._running += 1
        params = _sampling_params(sampling, dialect)
        return VllmJob(asyncio.run_coroutine_threadsafe(self._generate(engine, prompt, params, lora, on_chunk),
                                                        self.loop))

    async def _generate(self, engine, prompt, params, lora, on_chunk) -> None:
        from vllm import TokensPrompt

        tokens, finished = 0, False
        try:
            async for out in engine.generate(TokensPrompt(prompt_token_ids=prompt), params,
                                             f"ts-{uuid.uuid4().hex}", lora_request=lora):
                step = out.outputs[0]  # DELTA outputs: the text and tokens new since the last one
                tokens += len(step.token_ids)
                reason = _reason(step.finish_reason) if out.finished else None
                finished = reason is not None
                on_chunk(Chunk(step.text, tokens, reason, logprobs=_logprobs(step, params.logprobs)))
        except asyncio.CancelledError:
            on_chunk(Chunk("", tokens, "cancelled"))
            raise
        except Exception as err:  # a failed request fails alone; the server keeps serving
            on_chunk(Chunk("", tokens, "error", f"{type(err).__name__}: {err}"))
            finished = True
        finally:
            with self._lock:
                self._running -= 1
        if not finished:
            on_chunk(Chunk("", tokens, "stop"))

    def embed(self, target, texts):
        return self.local.embed(target, texts)

    def predict(self, target, rows):
        return self.local.predict(target, rows)

    def load(self, target: Target) -> None:
        if not target.can_generate:
            return self.local.load(target)
        self.dialect(target)
        if target.kind == "adapter":
            self._lora(target)

    def unload(self, target: Target) -> None:
        if not target.can_generate:
            return self.local.unload(target)
        with self._lock:
            entry = self._adapters.pop(target.key, None)
        if entry is not None:  # requests in flight keep their own reference inside vLLM
            engine = self._engines.get(entry[2])
            if engine is not None:
                self._call(engine.remove_lora(entry[0]), 60)

    def resident(self) -> dict[str, list[str]]:
        with self._lock:
            out: dict[str, list[str]] = {}
            for _, name, base in self._adapters.values():
                out.setdefault(base, []).append(name)
            return out

    def queue_depth(self) -> int:
        return self._running

    def close(self) -> None:
        for engine in list(self._engines.values()):
            engine.shutdown()
        self.local.close()
        self.loop.call_soon_threadsafe(self.loop.stop)


async def _create(cls, args):
    """Built inside vLLM's loop, so its output handler runs there."""
    return cls.from_engine_args(args)


def _chat_loaded(target: Target):
    """The run's tokenizer, template and config, without its weights (vLLM holds those)."""
    from tunesmith.adapters.sources import adapter_source
    from tunesmith.config.load import validate_config
    from tunesmith.data.templates import get_template
    from tunesmith.inference.load import Loaded
    from tunesmith.models import load_tokenizer, resolve_model
    from tunesmith.runs.rundir import RunDir

    if target.kind == "adapter":
        source = adapter_source(target.path)
        has_own = (source.path / "tokenizer_config.json").is_file()
        config, folder = source.config, source.path if has_own else resolve_model(target.base)
    elif RunDir.is_run(target.path):
        run = RunDir(target.path)
        config, folder = validate_config(run.read_config(), str(run.path / "config.yaml")), run.model_dir
    else:
        config, folder = validate_config({"model": {"name_or_path": target.path}}), resolve_model(target.path)
    tokenizer = load_tokenizer(folder)
    return Loaded(None, tokenizer, get_template(config.data.template, tokenizer), config)


def _sampling_params(sampling: Sampling, dialect: Dialect):
    from vllm.sampling_params import RequestOutputKind, SamplingParams

    stops = [s for s in (*sampling.stop, dialect.stop_text) if s]
    return SamplingParams(max_tokens=sampling.max_tokens, temperature=sampling.temperature, top_p=sampling.top_p,
                          seed=sampling.seed, stop=stops, stop_token_ids=sorted(dialect.stop_ids),
                          logprobs=sampling.logprobs, output_kind=RequestOutputKind.DELTA)


def _reason(reason: str | None) -> str:
    return "length" if reason == "length" else "stop"


def _logprobs(step, wanted: int | None) -> list[dict] | None:
    """vLLM's per-token {token_id: Logprob} as OpenAI's entries (the chosen token first)."""
    if wanted is None or not step.logprobs:
        return None
    entries = []
    for token_id, candidates in zip(step.token_ids, step.logprobs):
        chosen = candidates[token_id]
        top = sorted(candidates.values(), key=lambda c: c.rank)[:wanted]
        entries.append({"token": chosen.decoded_token, "logprob": chosen.logprob,
                        "bytes": list((chosen.decoded_token or "").encode()),
                        "top_logprobs": [{"token": c.decoded_token, "logprob": c.logprob,
                                          "bytes": list((c.decoded_token or "").encode())} for c in top]})
    return entries
