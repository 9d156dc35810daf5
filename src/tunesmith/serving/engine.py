"""The engine that runs models for the server, behind one interface (`Engine`).

`LocalEngine` (transformers + PEFT, CPU or GPU) keeps one copy of each base model. Every
LoRA-family run on that base is an adapter in the same PeftModel (a prompt-learning run, a KV
prefix: serving/virtual.py), loaded on first use and evicted least-recently-used beyond
`max_adapters`. One scheduler thread per base takes the requests waiting when it is free,
prefills them together and decodes all live
sequences in one forward pass per token, each row with its own adapter (PEFT's mixed-adapter
batches, `adapter_names=`); sequences join and leave the batch between steps (continuous
batching, see batching.py). Tokens go to each request as they are produced; a cancelled
request leaves the batch at the next step. The waiting queue is bounded: beyond it, Overloaded.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tunesmith.errors import ConfigError
from tunesmith.serving import batching
from tunesmith.serving.catalog import Target
from tunesmith.serving.dialect import Dialect
from tunesmith.serving.errors import BadRequest, Overloaded

BASE_ADAPTER = batching.BASE_ADAPTER


@dataclass(frozen=True)
class Sampling:
    max_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: int | None = None  # None: off; k: the chosen token's log probability and the k most likely


@dataclass
class Chunk:
    """What a request receives after each generated token (text may be empty while held back)."""

    text: str
    tokens: int  # completion tokens so far
    finish_reason: str | None = None  # stop | length | cancelled | error
    error: str | None = None
    logprobs: list[dict] | None = None  # the token of this step: {token, logprob, bytes, top_logprobs}


@dataclass(eq=False)
class Job:
    prompt: list[int]
    sampling: Sampling
    dialect: Dialect
    on_chunk: Callable[[Chunk], None]
    adapter: str | None = None  # PEFT adapter name, None for the base / a model of its own
    prefix: object = None  # a prompt-learning run's virtual tokens (serving/virtual.py), else None
    cancelled: threading.Event = field(default_factory=threading.Event)
    generated: list[int] = field(default_factory=list)
    sent: int = 0  # characters of the reply already sent
    generator: object = None
    done: bool = False

    def cancel(self) -> None:
        self.cancelled.set()


class Engine(ABC):
    """What the server needs from an engine; the built-in one is LocalEngine."""

    @abstractmethod
    def dialect(self, target: Target) -> Dialect: ...

    @abstractmethod
    def submit(self, target: Target, prompt: list[int], sampling: Sampling, on_chunk: Callable[[Chunk], None]) -> Job:
        """Queue a generation; raises Overloaded when the queue is full."""

    @abstractmethod
    def embed(self, target: Target, texts: list[str]) -> tuple[list[list[float]], int]: ...

    @abstractmethod
    def predict(self, target: Target, rows: list[dict]) -> tuple[list[dict], list[str] | None]:
        """The task's answer for each row and the run's label map (None for tasks without labels)."""

    @abstractmethod
    def load(self, target: Target) -> None: ...

    @abstractmethod
    def unload(self, target: Target) -> None: ...

    @abstractmethod
    def resident(self) -> dict[str, list[str]]:
        """{base: [served adapter names]} of the adapters in memory now."""

    @abstractmethod
    def queue_depth(self) -> int: ...

    def ready(self) -> bool:
        return True

    @abstractmethod
    def close(self) -> None:
        """Stop the engine's threads."""


class LocalEngine(Engine):
    def __init__(self, max_adapters: int = 8, max_batch: int = 16, max_queue: int = 64, batch_wait_ms: float = 0.0):
        self.max_adapters, self.max_batch, self.max_queue = max_adapters, max_batch, max_queue
        self.wait = batch_wait_ms / 1000
        self._slots: dict[str, Slot] = {}
        self._dialects: dict[str, Dialect] = {}
        self._others: dict[str, tuple] = {}  # encoders and task models: path -> (Loaded, lock)
        self._combiners: dict[str, Combiner] = {}  # task models: path -> the batcher of their predict calls
        self._lock = threading.Lock()

    # --- generation ----------------------------------------------------------------------
    def submit(self, target, prompt, sampling, on_chunk):
        slot = self._slot(target)
        job = Job(prompt, sampling, self.dialect(target), on_chunk)
        if sampling.seed is not None or sampling.temperature > 0:
            import torch

            job.generator = torch.Generator().manual_seed(sampling.seed if sampling.seed is not None
                                                           else int(time.time_ns() % 2**31))
        if target.kind == "adapter":
            job.adapter = slot.acquire(target)
            job.prefix = slot.prefixes.get(job.adapter)
        try:
            slot.submit(job)
        except Overloaded:
            slot.release(job.adapter)
            raise
        return job

    def dialect(self, target: Target) -> Dialect:
        _generates(target)
        key = target.key if target.kind == "adapter" else target.path
        if key not in self._dialects:
            self._dialects[key] = self._make_dialect(target)
        return self._dialects[key]

    def _make_dialect(self, target: Target) -> Dialect:
        from tunesmith.inference.load import Loaded

        slot = self._slot(target)
        if target.kind != "adapter":
            return Dialect.of(slot.loaded, slot.context)
        from tunesmith.adapters.sources import adapter_source
        from tunesmith.data.templates import get_template
        from tunesmith.models import load_tokenizer
        from tunesmith.serving.virtual import virtual_tokens

        source = adapter_source(target.path)
        has_tokenizer = (source.path / "tokenizer_config.json").is_file()
        tokenizer = load_tokenizer(source.path) if has_tokenizer else slot.loaded.tokenizer
        config = source.config
        loaded = Loaded(None, tokenizer, get_template(config.data.template, tokenizer), config)
        return Dialect.of(loaded, slot.context - virtual_tokens(source.path))  # virtual tokens take context

    def _slot(self, target: Target) -> Slot:
        _generates(target)
        key = self._slot_key(target)
        with self._lock:
            if key not in self._slots and target.kind == "onnx":
                from tunesmith.serving.onnx import OnnxSlot, load_onnx

                self._slots[key] = OnnxSlot(load_onnx(target.path), self)
            elif key not in self._slots:
                self._slots[key] = Slot(_load_base(target), self)
            return self._slots[key]

    @staticmethod
    def _slot_key(target: Target) -> str:
        """Adapters share their base's slot; a model directory that is that base shares it too."""
        from pathlib import Path

        from tunesmith.models import resolve_model

        if (target.kind == "model" and target.task is not None) or target.kind == "onnx":
            return str(Path(target.path).resolve())
        return str(resolve_model(target.base).resolve())

    def load(self, target: Target) -> None:
        if target.kind == "adapter":
            slot = self._slot(target)
            slot.release(slot.acquire(target))
        elif target.can_generate:
            self._slot(target)
        else:
            self._other(target)

    def unload(self, target: Target) -> None:
        if target.kind == "adapter":
            slot = self._slots.get(self._slot_key(target))
            if slot is not None:
                slot.retire(target.key)
        else:
            with self._lock:
                slot = self._slots.pop(self._slot_key(target), None)
                self._others.pop(target.path, None)
                self._combiners.pop(target.path, None)
            if slot is not None:
                slot.close()

    def resident(self) -> dict[str, list[str]]:
        return {base: slot.resident() for base, slot in list(self._slots.items())}

    def queue_depth(self) -> int:
        return sum(len(s.waiting) for s in list(self._slots.values()))

    def close(self) -> None:
        for slot in list(self._slots.values()):
            slot.close()

    # --- encoders and task models ----------------------------------------------------------
    def _other(self, target: Target):
        with self._lock:
            if target.path not in self._others:
                self._others[target.path] = (_load_plain(target), threading.Lock())
            return self._others[target.path]

    def embed(self, target, texts):
        """Mean of the last hidden states over each text's real tokens."""
        import torch

        _onnx_serves(target, "embeddings")
        loaded, lock = self._other(target)
        tok = loaded.tokenizer
        limit = getattr(tok, "model_max_length", 512)
        with lock, torch.inference_mode():  # the lock covers the tokenizer's padding state too
            batch = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=min(limit, 8192))
            hidden = loaded.model(**batch, output_hidden_states=True).hidden_states[-1]
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        vectors = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        return vectors.tolist(), int(batch["attention_mask"].sum())

    def predict(self, target, rows):
        from tunesmith.tasks import TASKS

        _onnx_serves(target, "predict")
        task = TASKS.get(target.task) if target.task else None
        if task is None or task.predict is None:
            raise BadRequest(f"model {target.label!r} has no predict (task {target.task}); "
                             "use /v1/chat/completions", "model")
        loaded, lock = self._other(target)
        combiner = self._combiners.setdefault(target.path, Combiner(
            lambda records: task.predict(loaded.model, loaded.tokenizer, records, loaded.config, 16)[0], lock))
        return combiner.run(rows), getattr(loaded.config.task, "labels", None)


class Combiner:
    """Concurrent predict calls on one model run as one batch: a caller that gets the model runs
    every call waiting by then (flat combining: no timer, so a lone call waits for nothing).
    Each row's origin names the call it came from; if the batch fails, or a task does not pass
    origins through, each call runs alone, so that a bad request fails only itself."""

    def __init__(self, predict: Callable[[list[dict]], list[dict]], lock: threading.Lock):
        self.predict, self.lock = predict, lock
        self.pending: list[dict] = []  # {"rows", "out", "error", "done"}
        self.guard = threading.Lock()

    def run(self, rows: list[dict]) -> list[dict]:
        call = {"rows": rows, "out": None, "error": None, "done": False}
        with self.guard:
            self.pending.append(call)
        with self.lock:
            if not call["done"]:
                with self.guard:
                    calls, self.pending = self.pending, []
                self._together(calls) if len(calls) > 1 else self._alone(calls[0])
        if call["error"] is not None:
            raise call["error"]
        return call["out"]

    def _alone(self, call: dict) -> None:
        try:
            out = self.predict([{**row, "_origin": f"request row {i}"} for i, row in enumerate(call["rows"])])
            call.update(out=out, done=True)
        except Exception as err:
            call.update(error=err, done=True)

    def _together(self, calls: list[dict]) -> None:
        records = [{**row, "_origin": _Origin.of(i, c)} for c, call in enumerate(calls)
                   for i, row in enumerate(call["rows"])]
        try:
            out = self.predict(records)
        except Exception:
            out = None
        if out is None or not all(isinstance(row.get("origin"), _Origin) for row in out):
            for call in calls:
                self._alone(call)
            return
        for call in calls:
            call.update(out=[], done=True)
        for row in out:
            calls[row["origin"].call]["out"].append({**row, "origin": str(row["origin"])})


class _Origin(str):
    """A row's origin as messages print it ("request row 2"), knowing which call it belongs to."""

    call: int

    @classmethod
    def of(cls, row: int, call: int) -> _Origin:
        origin = cls(f"request row {row}")
        origin.call = call
        return origin


ENGINES = ("local", "vllm")


def prefer_sleeping_threads() -> None:
    """Make torch's OpenMP threads sleep, not spin, between parallel regions (OMP_WAIT_POLICY=PASSIVE),
    unless the environment sets OMP_WAIT_POLICY or GOMP_SPINCOUNT; it must run before torch is
    imported. A server shares its cores with its event loop, its clients and other processes: on
    the shared 2-core machine of 2026-11-30 (load average 14), a 50-token forward of smollm2 with
    2 threads took 5.7-10.5 s spinning and 0.9-1.8 s sleeping. On an idle machine, libgomp's own
    brief spin (`GOMP_SPINCOUNT=300000`) served 11% more tokens/s (docs/serving.md, Latency)."""
    import os
    import sys

    if "torch" not in sys.modules and "GOMP_SPINCOUNT" not in os.environ:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def make_engine(name: str = "local", max_adapters: int = 8, max_batch: int = 16, max_queue: int = 64) -> Engine:
    """The engine `tunesmith serve --engine NAME` runs on: local (transformers + PEFT, the default)
    or vllm (serving/vllm_engine.py; refused with one clear line where vllm cannot be imported)."""
    if name == "vllm":
        from tunesmith.serving.vllm_engine import VllmEngine

        return VllmEngine(max_adapters=max_adapters, max_queue=max_queue, max_num_seqs=max_batch)
    if name != "local":
        raise ConfigError(f"--engine {name!r} is not an engine; use one of {', '.join(ENGINES)}")
    return LocalEngine(max_adapters=max_adapters, max_batch=max_batch, max_queue=max_queue)


def _generates(target: Target) -> None:
    if not target.can_generate:
        raise BadRequest(f"model {target.label!r} (task {target.task}) does not generate text; "
                         "use POST /v1/predict or /v1/embeddings", "model")


def _onnx_serves(target: Target, what: str) -> None:
    """An ONNX export serves what its graph computes: text (chat, completions), a classification
    run's logits (predict) or an encoder's hidden states (embeddings)."""
    if target.kind != "onnx":
        return
    kind, serves = (("causal LM", "chat and completions") if target.can_generate else
                    ("classification run", "predict") if target.task == "classification" else
                    ("encoder", "embeddings"))
    if serves != what:
        raise BadRequest(f"model {target.label!r} is an ONNX export of a {kind}; it serves {serves}, not {what} "
                         "(serve the run it was exported from)", "model")


def _load_base(target: Target):
    """A model to generate with: a run of its own, or an adapter's base (loaded bare)."""
    from tunesmith.inference.load import load_for_inference

    return load_for_inference(target.path if target.kind == "model" else target.base)


def _load_plain(target: Target):
    """Encoders and task models: a run loads as trained; a plain directory as an encoder."""
    from tunesmith.config.load import validate_config
    from tunesmith.inference.load import Loaded, load_for_inference
    from tunesmith.models import load_model, load_tokenizer, resolve_model

    if target.kind == "onnx":
        from tunesmith.serving.onnx import load_onnx_encoder

        return load_onnx_encoder(target.path)
    if target.task is not None:
        return load_for_inference(target.path)
    from transformers import AutoModel

    model_dir = resolve_model(target.path)
    config = validate_config({"model": {"name_or_path": target.path}})
    return Loaded(load_model(model_dir, AutoModel).eval(), load_tokenizer(model_dir), None, config)


class Slot:
    """One model in memory, its adapters and the scheduler thread that runs its batches."""

    def __init__(self, loaded, engine: LocalEngine):
        self.loaded, self.engine = loaded, engine
        from peft import PeftModel

        self.forward = batching.Forward(loaded.model, peft=isinstance(loaded.model, PeftModel))
        self.own_adapter = self.forward.peft  # a non-LoRA PEFT run served whole: its adapter is always on
        config = getattr(loaded.model, "config", None)
        self.context = int(getattr(config, "max_position_embeddings", 0) or 2048)
        self.pad = loaded.tokenizer.pad_token_id or 0
        self.waiting: deque[Job] = deque()
        self.adapters: OrderedDict[str, list] = OrderedDict()  # key -> [references, retired, name]
        self.prefixes: dict[str, object] = {}  # key -> Prefix of the prompt-learning runs among the adapters
        self.lock = threading.Lock()  # the model: held for each forward pass and adapter change
        self.table = threading.Lock()  # self.adapters; taken after self.lock when both are held
        self.wake = threading.Condition()
        self.closed = False
        self.live = 0  # sequences in the running batch
        self.joining: list[Job] = []  # taken from the queue, not yet in the batch
        self.thread = threading.Thread(target=self._run, daemon=True, name="tunesmith-batcher")
        self.thread.start()

    # --- adapters ------------------------------------------------------------------------
    def acquire(self, target: Target) -> str:
        """The adapter's PEFT name, loaded if needed and held until release(). A resident adapter
        is taken without waiting for the forward pass in progress (only loading changes the model)."""
        key = target.key
        if self._hold(key, target.name):
            return key
        with self.lock:
            if not self._hold(key, target.name):
                self._load_adapter(key, target.path)
                with self.table:
                    self.adapters[key] = [1, False, target.name]
            self._evict()
        return key

    def _hold(self, key: str, name: str) -> bool:
        with self.table:
            entry = self.adapters.get(key)
            if entry is None:
                return False
            entry[0] += 1
            entry[2] = name
            self.adapters.move_to_end(key)
            return True

    def release(self, key: str | None) -> None:
        if key is None:
            return
        with self.table:
            entry = self.adapters.get(key)
            if entry is None:
                return
            entry[0] -= 1
            unload = entry[0] == 0 and (entry[1] or len(self.adapters) > self.engine.max_adapters)
        if unload:
            with self.lock:
                self._evict()

    def retire(self, key: str) -> None:
        """Unload once the requests using it are done."""
        with self.table:
            entry = self.adapters.get(key)
            if entry is None:
                return
            entry[1] = True
        with self.lock:
            self._evict()

    def resident(self) -> list[str]:
        return [entry[2] for entry in list(self.adapters.values())]

    def _load_adapter(self, key: str, run_path: str) -> None:
        from peft import PeftModel

        from tunesmith.adapters.sources import adapter_source
        from tunesmith.serving.virtual import SERVED, make_prefix

        source = adapter_source(run_path)
        path = source.path
        if source.peft_type in SERVED:  # prompt learning: a cache prefix, the base model untouched
            rows = [BASE_ADAPTER] if self.forward.peft else None
            self.prefixes[key] = make_prefix(self.forward, self.loaded.model, path, rows)
            return
        if not self.forward.peft:
            self.forward.model = PeftModel.from_pretrained(self.loaded.model, path, adapter_name=key).eval()
            self.forward.peft = True
        else:
            self.forward.model.load_adapter(path, adapter_name=key)
        self.forward.model.eval()

    def _evict(self) -> None:
        """Unload (model lock held) the retired adapters nobody uses, then the least recently used
        idle ones beyond max_adapters; they leave the table first, so nobody can take them meanwhile."""
        with self.table:
            idle = [k for k, (refs, _, _) in self.adapters.items() if refs == 0]
            gone = [k for k in idle if self.adapters[k][1]]
            over = len(self.adapters) - len(gone) - self.engine.max_adapters
            gone += [k for k in idle if k not in gone][:max(0, over)]
            for key in gone:
                del self.adapters[key]
        for key in gone:
            self._delete(key)

    def _delete(self, key: str) -> None:
        import warnings

        if self.prefixes.pop(key, None) is not None:
            return
        with warnings.catch_warnings():  # PEFT warns that the active adapter changes; routing is per row
            warnings.simplefilter("ignore")
            if len(self.forward.model.peft_config) > 1:
                self.forward.model.delete_adapter(key)
            else:  # the last one: PEFT cannot take new adapters after that, so go back to the bare base
                self.loaded.model = self.forward.model = self.forward.model.unload()
                self.forward.peft = False

    # --- scheduling ----------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        with self.wake:
            if len(self.waiting) >= self.engine.max_queue:
                raise Overloaded(f"the server is busy ({len(self.waiting)} requests waiting); retry shortly")
            self.waiting.append(job)
            self.wake.notify()

    def close(self) -> None:
        with self.wake:
            self.closed = True
            self.wake.notify()

    def _run(self) -> None:
        batch, live = None, []
        while True:
            with self.wake:
                while not self.waiting and not live and not self.closed:
                    self.wake.wait()
                if self.closed:
                    return
            if not live and self.engine.wait:  # optionally let more requests arrive to prefill together; by
                time.sleep(self.engine.wait)  # default none: each wait adds to time to first token, and later
                # arrivals join the batch at the next step anyway
            try:
                batch, live = self._admit(batch, live)
                if live:
                    batch, live = self._decode(batch, live)
                self.live = len(live)
            except Exception as err:  # a failing batch fails its requests, never the server
                logging.getLogger("tunesmith.serve").exception("a batch failed")
                for job in live + self.joining:
                    self._finish(job, "", "error", f"{type(err).__name__}: {err}")
                batch, live, self.joining = None, [], []
                self.live = 0

    def _admit(self, batch, live):
        with self.wake:
            room = self.engine.max_batch - len(live)
            new = [self.waiting.popleft() for _ in range(min(room, len(self.waiting)))]
        new = [j for j in new if not self._dropped(j)]
        if not new:
            return batch, live
        if batch is not None and not batching.joinable(batch.cache):
            with self.wake:  # this cache cannot be joined: wait for the batch to end
                self.waiting.extendleft(reversed(new))
            return batch, live
        self.joining = new  # failed with the batch if prefill fails
        with self.lock:
            logits, cache, mask = batching.prefill(self.forward, [j.prompt for j in new], self._names(new), self.pad,
                                                   [j.prefix for j in new])
        tokens = self._choose(logits, new)
        kept = [i for i, (j, t) in enumerate(zip(new, tokens)) if self._emit(j, t, self._logprobs(logits[i], j, t))]
        if kept:
            import torch

            index = torch.tensor(kept)
            cache.batch_select_indices(index)
            last = torch.tensor([[tokens[i]] for i in kept])
            batch = batching.join(batch, cache, mask[index], last)
            live = live + [new[i] for i in kept]
        self.joining = []
        return batch, live

    def _decode(self, batch, live):
        with self.lock:
            logits = batching.step(self.forward, batch, self._names(live))
        tokens = self._choose(logits, live)
        kept = [i for i, (job, t) in enumerate(zip(live, tokens))
                if self._emit(job, t, self._logprobs(logits[i], job, t))]
        if len(kept) < len(live):
            batch = batching.keep(batch, kept)
            live = [live[i] for i in kept]
        if batch is not None:
            import torch

            batch.last = torch.tensor([[tokens[i]] for i in kept]) if kept else batch.last
        return batch, live

    def _names(self, jobs: list[Job]) -> list[str] | None:
        if not self.forward.peft or self.own_adapter:
            return None
        return [BASE_ADAPTER if j.adapter is None or j.prefix is not None else j.adapter for j in jobs]

    def _choose(self, logits, jobs: list[Job]) -> list[int]:
        """Greedy for temperature 0; otherwise temperature and nucleus sampling with the job's seed."""
        import torch

        chosen = logits.argmax(-1).tolist()
        for i, job in enumerate(jobs):
            s = job.sampling
            if s.temperature > 0:
                probs = torch.softmax(logits[i] / s.temperature, -1)
                if s.top_p < 1:
                    ordered, order = probs.sort(descending=True)
                    outside = ordered.cumsum(-1) - ordered > s.top_p
                    probs = probs.scatter(0, order, ordered.masked_fill(outside, 0))
                chosen[i] = int(torch.multinomial(probs, 1, generator=job.generator))
        return chosen

    @staticmethod
    def _logprobs(logits, job: Job, token: int) -> list[dict] | None:
        """OpenAI's token log probability entry (of the unscaled distribution), when asked for."""
        if job.sampling.logprobs is None:
            return None
        import torch

        logp = torch.log_softmax(logits, -1)
        tok = job.dialect.tokenizer

        def entry(t: int) -> dict:
            text = tok.decode([t])
            return {"token": text, "logprob": float(logp[t]), "bytes": list(text.encode())}

        top = logp.topk(job.sampling.logprobs).indices.tolist() if job.sampling.logprobs else []
        return [{**entry(token), "top_logprobs": [entry(t) for t in top]}]

    def _dropped(self, job: Job) -> bool:
        if job.cancelled.is_set():
            self._finish(job, "", "cancelled")
            return True
        return False

    def _emit(self, job: Job, token: int, logprobs: list[dict] | None = None) -> bool:
        """Send what the token adds to the reply; False when the job is finished."""
        if self._dropped(job):
            return False
        d, s = job.dialect, job.sampling
        job.generated.append(token)
        if token in d.stop_ids:
            text = d.tokenizer.decode(job.generated[:-1], skip_special_tokens=True)
            self._finish(job, text[job.sent:], "stop")
            return False
        text = d.tokenizer.decode(job.generated, skip_special_tokens=True)
        stops = [x for x in (*s.stop, d.stop_text) if x]
        found = [i for i in (text.find(x, max(0, job.sent - len(x))) for x in stops) if i >= 0]
        if found:
            self._finish(job, text[job.sent:min(found)], "stop")
            return False
        if len(job.generated) >= s.max_tokens or len(job.prompt) + len(job.generated) >= d.context:
            self._finish(job, text[job.sent:], "length", logprobs=logprobs)
            return False
        # hold back what could be the start of a stop string or half of a multi-byte character
        whole = text.rstrip("\ufffd")
        hold = max((k for x in stops for k in range(1, len(x)) if whole.endswith(x[:k])), default=0)
        new = whole[job.sent:max(len(whole) - hold, job.sent)]
        job.sent += len(new)
        job.on_chunk(Chunk(new, len(job.generated), logprobs=logprobs))
        return True

    def _finish(self, job: Job, text: str, reason: str, error: str | None = None, logprobs=None) -> None:
        if job.done:
            return
        job.done = True
        self.release(job.adapter)
        job.on_chunk(Chunk(text, len(job.generated), reason, error, logprobs))
