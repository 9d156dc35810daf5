"""Where one request's time goes in `tunesmith serve`, in one process, against a bare forward pass.

    nice -n 10 /work/main/.venv/bin/python benchmarks/serve_latency.py [--rounds 8] [--parts gen,cls]

Generation (smollm2-135m-instruct with one LoRA adapter, as leg (d) of serve_load.py; a 50-token
chat prompt, 1 client): the bare forward of the prompt (the PeftModel with the adapter, last
position's logits only) and, for the same prompt through the server, the time to the first
streamed token split into: the chat template and tokenizer, the wait before the scheduler starts
the prefill, the prefill forward, choosing and sending the first token, and the rest (HTTP,
JSON, SSE, the event loop, the `openai` client). Classification (the SST-2 minilm run of leg (p),
one sentence): the bare forward, the task's predict, the engine's predict and POST /v1/predict
from 1 client, then 16 clients for a few seconds. Every figure is a median over rounds that
interleave the variants, so a machine loaded by others slows them alike; the load average is
printed with them. `--ab` also measures arm "before": the engine as it was before the latency
work of 2026-11-30 (a 5 ms batching window, three worker-thread trips per request on asyncio's
pool of cores + 4 threads, adapters taken under the model's lock), patched in place, in rounds
interleaved with the current code. Needs the work folder of serve_load.py (/tmp/serve-bench: its adapters and
SST-2 run); run serve_load.py --quick --legs d,p once to make it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))


class Spans:
    """Timestamps the engine's steps of the request being measured (wrapping, not editing, them)."""

    def __init__(self):
        self.marks: dict[str, float] = {}

    def wrap(self, owner, name: str, before: str, after: str):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            self.marks.setdefault(before, time.perf_counter())
            try:
                return original(*args, **kwargs)
            finally:
                self.marks.setdefault(after, time.perf_counter())

        setattr(owner, name, timed)


@contextmanager
def before(service, on: bool):
    """Arm "before": the code paths this file's A/B replaced, patched onto `service` while inside."""
    if not on:
        yield
        return
    import asyncio as aio

    from tunesmith.serving import engine as engine_module

    async def resolve(call, name, warm=True):  # three trips to asyncio's default pool
        call.target = await aio.to_thread(service.catalog.resolve, name, call.subject)
        if warm and call.target.can_generate:
            await aio.to_thread(service.engine.load, call.target)
            await aio.to_thread(service.engine.dialect, call.target)
        return call.target

    async def off_loop(fn, *args):
        return await aio.to_thread(fn, *args)

    slot_class = engine_module.Slot
    acquire, release = slot_class.acquire, slot_class.release

    def locked_acquire(self, target):  # resident adapters were taken under the model's lock
        with self.lock:
            self._hold(target.key, target.name)
        return target.key

    def locked_release(self, key):
        with self.lock:
            pass
        release(self, key)

    service.resolve, service._off_loop = resolve, off_loop
    slot_class.acquire, slot_class.release = locked_acquire, locked_release
    service.engine.wait = 0.005
    try:
        yield
    finally:
        del service.resolve, service._off_loop
        slot_class.acquire, slot_class.release = acquire, release
        service.engine.wait = 0.0


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.1f}" if values else "      -"


GEN_ROWS = [("bare", "bare forward (prefill, PeftModel + adapter)"),
            ("engine", "engine in process: submit -> first token"),
            ("http", "HTTP TTFT (openai client, streamed)"),
            ("template", "  chat template + tokenizer"),
            ("wait", "  template -> prefill starts (threads, queue)"),
            ("prefill", "  prefill forward"),
            ("choose", "  first token chosen"),
            ("rest", "  the rest (HTTP, resolve, decode, SSE, client)")]


def generation(rounds: int, work: Path, arms: list[str]) -> None:
    import openai
    import serve_load
    import torch
    from transformers import AutoTokenizer

    from inproc import serving
    from tunesmith.models import resolve_model
    from tunesmith.server.app import create_app
    from tunesmith.serving import batching
    from tunesmith.serving import engine as engine_module
    from tunesmith.serving.catalog import Catalog
    from tunesmith.serving.dialect import Dialect
    from tunesmith.serving.engine import LocalEngine, Sampling
    from tunesmith.serving.service import Service

    adapter = work / "runs" / "lora-1"
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(serve_load.MODEL))
    messages = serve_load.cut_to(tokenizer, serve_load.request_mix(tokenizer, 1)[0][0]["content"] * 3, 50)
    service = Service(Catalog(work / "runs", [str(adapter)]), LocalEngine())
    spans = Spans()
    spans.wrap(Dialect, "chat_prompt", "template", "template_end")
    spans.wrap(batching, "prefill", "prefill", "prefill_end")
    spans.wrap(engine_module.Slot, "_choose", "choose", "choose_end")
    timings = {arm: {k: [] for k, _ in GEN_ROWS} for arm in arms}
    with serving(create_app(service)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        target = service.catalog.resolve(adapter.name)
        ask = dict(model=adapter.name, messages=messages, max_tokens=1, temperature=0, stream=True)
        list(client.chat.completions.create(**ask))  # loads the model and adapter
        slot = next(iter(service.engine._slots.values()))
        prompt = service.engine.dialect(target).chat_prompt(messages)
        names = slot._names([engine_module.Job(prompt, None, None, None, adapter=target.key)])
        print(f"prompt: {len(prompt)} tokens; torch threads {torch.get_num_threads()}")

        def bare(t):
            start = time.perf_counter()
            with slot.lock:
                batching.prefill(slot.forward, [prompt], names, slot.pad)
            t["bare"].append(time.perf_counter() - start)

        def engine(t):
            first = threading.Event()
            start = time.perf_counter()
            service.engine.submit(target, prompt, Sampling(max_tokens=1, temperature=0), lambda chunk: first.set())
            first.wait()
            t["engine"].append(time.perf_counter() - start)

        def http(t):
            spans.marks.clear()
            start = time.perf_counter()
            for chunk in client.chat.completions.create(**ask):
                if chunk.choices and chunk.choices[0].delta.content:
                    break
            end = time.perf_counter()
            m = spans.marks
            t["http"].append(end - start)
            t["template"].append(m["template_end"] - m["template"])
            t["wait"].append(m["prefill"] - m["template_end"])
            t["prefill"].append(m["prefill_end"] - m["prefill"])
            t["choose"].append(m["choose_end"] - m["prefill_end"])
            t["rest"].append((end - start) - (m["choose_end"] - m["template"]))

        for _ in range(rounds):
            for arm in arms:
                with before(service, arm == "before"):
                    for step in (bare, engine, http):
                        step(timings[arm])
        busy = {arm: [] for arm in arms}
        for _ in range(max(1, rounds // 4)):
            for arm in arms:
                with before(service, arm == "before"):
                    busy[arm] += streams(url, adapter.name, serve_load.request_mix(tokenizer, 8), 4, 16)
    service.engine.close()
    print(f"generation, 1 client, {len(prompt)}-token prompt, medians of {rounds} rounds (ms); load {os.getloadavg()}")
    print(f"  {'':48s}" + "".join(f"{arm:>10s}" for arm in arms))
    for key, label in GEN_ROWS:
        print(f"  {label:48s}" + "".join(f"{median_ms(timings[arm][key]):>10s}" for arm in arms))
    label = "TTFT, 4 clients streaming 16 tokens (p50)"
    print(f"  {label:48s}" + "".join(f"{median_ms(busy[arm]):>10s}" for arm in arms))


def streams(url: str, model: str, mix: list, clients: int, tokens: int) -> list[float]:
    """Times to first token of `clients` clients streaming two requests each from `mix` at once."""
    import openai

    async def one(client, messages) -> float:
        start, first = time.perf_counter(), None
        async for chunk in await client.chat.completions.create(model=model, messages=messages, max_tokens=tokens,
                                                                temperature=0, stream=True):
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - start
        return first if first is not None else time.perf_counter() - start

    async def run() -> list[float]:
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as client:
            async def serial(k):
                return [await one(client, mix[k]), await one(client, mix[k + clients])]
            return [t for pair in await asyncio.gather(*(serial(k) for k in range(clients))) for t in pair]

    return asyncio.run(run())


def classification(rounds: int, work: Path, seconds: float, arms: list[str]) -> None:
    import httpx
    import serve_load
    import torch

    from inproc import serving
    from tunesmith.server.app import create_app
    from tunesmith.serving.catalog import Catalog
    from tunesmith.serving.engine import LocalEngine
    from tunesmith.serving.service import Service
    from tunesmith.tasks import TASKS

    run = work / "runs" / "sst2-minilm"
    sentences = serve_load.sentences(200)
    service = Service(Catalog(work / "runs", [str(run)]), LocalEngine())
    timings = {arm: {k: [] for k in ("bare", "task", "engine", "http")} for arm in arms}
    loads = {arm: [] for arm in arms}
    with serving(create_app(service)) as url, httpx.Client(base_url=url, timeout=30) as client:
        body = {"model": run.name, "input": {"sentence": sentences[0]}}
        assert client.post("/v1/predict", json=body).status_code == 200
        target = service.catalog.resolve(run.name)
        loaded, lock = service.engine._other(target)
        task = TASKS.get(target.task)

        def bare(t, i):
            start = time.perf_counter()
            with torch.inference_mode():
                loaded.model(**loaded.tokenizer(sentences[i], return_tensors="pt"))
            t["bare"].append(time.perf_counter() - start)

        def task_predict(t, i):
            start = time.perf_counter()
            task.predict(loaded.model, loaded.tokenizer, [{"sentence": sentences[i]}], loaded.config, 16)
            t["task"].append(time.perf_counter() - start)

        def engine(t, i):
            start = time.perf_counter()
            service.engine.predict(target, [{"sentence": sentences[i]}])
            t["engine"].append(time.perf_counter() - start)

        def http(t, i):
            start = time.perf_counter()
            client.post("/v1/predict", json={"model": run.name, "input": {"sentence": sentences[i]}})
            t["http"].append(time.perf_counter() - start)

        for i in range(rounds * 4):
            for arm in arms:
                with before(service, arm == "before"):
                    for step in (bare, task_predict, engine, http):
                        step(timings[arm], i % len(sentences))
        print(f"classification, 1 client, one sentence, medians of {rounds * 4} (ms); load {os.getloadavg()}")
        print(f"  {'':48s}" + "".join(f"{arm:>10s}" for arm in arms))
        for key, label in [("bare", "bare forward (tokenizer + model)"), ("task", "task.predict (the library)"),
                           ("engine", "engine.predict (combiner)"), ("http", "POST /v1/predict")]:
            print(f"  {label:48s}" + "".join(f"{median_ms(timings[arm][key]):>10s}" for arm in arms))
        for _ in range(max(1, rounds // 4)):
            for arm in arms:
                with before(service, arm == "before"):
                    loads[arm].append(concurrent(url, run.name, sentences, 16, seconds))
        for arm in arms:
            rates = [r for r, _, _ in loads[arm]]
            print(f"  16 clients, {arm:>7s}: requests/s {' '.join(f'{r:.1f}' for r in rates)}; p50 ms "
                  f"{' '.join(f'{p:.0f}' for _, p, _ in loads[arm])}; p95 ms "
                  f"{' '.join(f'{p:.0f}' for _, _, p in loads[arm])}")
        print(f"  load {os.getloadavg()}")
    service.engine.close()


def concurrent(url: str, model: str, sentences: list[str], clients: int, seconds: float) -> tuple:
    """(requests/s, p50 ms, p95 ms) of `clients` clients sending one sentence per request."""
    import httpx

    latencies: list[float] = []

    async def one_client(k: int, until: float, http: httpx.AsyncClient) -> None:
        i = k
        while time.perf_counter() < until:
            start = time.perf_counter()
            answer = await http.post("/v1/predict", json={"model": model, "input": {"sentence": sentences[i % 200]}})
            answer.raise_for_status()
            latencies.append(time.perf_counter() - start)
            i += clients

    async def run() -> float:
        limits = httpx.Limits(max_connections=clients)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
            start = time.perf_counter()
            await asyncio.gather(*(one_client(k, start + seconds, http) for k in range(clients)))
            return time.perf_counter() - start

    span = asyncio.run(run())
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return len(latencies) / span, statistics.median(ordered) * 1000, p95 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--parts", default="gen,cls")
    parser.add_argument("--seconds", type=float, default=10.0, help="of the 16-client classification run")
    parser.add_argument("--work", default="/tmp/serve-bench")
    parser.add_argument("--ab", action="store_true", help="also measure arm 'before', interleaved")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, one per core)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()}")
    arms = ["before", "now"] if args.ab else ["now"]
    if "gen" in args.parts:
        generation(args.rounds, Path(args.work), arms)
    if "cls" in args.parts:
        classification(args.rounds, Path(args.work), args.seconds, arms)


if __name__ == "__main__":
    main()
