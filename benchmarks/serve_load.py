"""Serving under load, side by side: naive FastAPI, `transformers serve`, llama.cpp, tunesmith serve.

    nice -n 10 /work/main/.venv/bin/python benchmarks/serve_load.py            # full (under 12 minutes)
    ... --quick                                                                 # a short check (~3 minutes)
    ... --legs d,e,p --reuse a,b,c   # re-measure tunesmith only; the other rows come from the last report
    ... --legs c --quick --clients 1,4 --out /tmp/c.md --json /tmp/c.json   # a smoke run of one leg

One model (smollm2-135m-instruct, the zoo's safetensors conversion; leg c its GGUF q8_0 export),
one request mix (chat prompts of 20-200 tokens cut from the alpaca demo rows, 64 output tokens,
greedy, streamed), driven by the official `openai` client with asyncio from 1, 4 and 16
concurrent clients on loopback. Each server runs alone in its own process, one after another:
    (a) FastAPI around `model.generate`, one request at a time (benchmarks/_naive_server.py);
    (b) `transformers serve` (transformers' own OpenAI-compatible server), its defaults;
    (c) llama.cpp's server (llama-cpp-python[server], built from its source package into --llama-venv,
        by default this interpreter's venv; the leg is skipped, with the reason, where it is not there);
    (d) tunesmith serve, one LoRA adapter; (e) tunesmith serve, 4 LoRA adapters, requests round robin;
    (p) tunesmith serve, an SST-2 minilm classification run behind /v1/predict;
    (q) the same, served from the run's ONNX export (`tunesmith export RUN --to onnx`, onnxruntime).
A cell (leg x clients) issues requests until its time is up (or its request cap is reached),
then lets the requests in flight finish within a grace period (those still running then are
cut: counted apart, not as errors); tokens/s and requests/s are over that whole span.
Time to first token is to the first streamed content. A separate probe sends 50-token prompts
from one client (time to first token p50 of that probe is a target). Results go to
docs/serving.md (between the serve-load markers) and docs/serve_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

MODEL = "smollm2-135m-instruct"
LEGS = {
    "a": "naive: FastAPI around model.generate, one request at a time",
    "b": "transformers serve (its defaults)",
    "c": "llama.cpp server (llama-cpp-python) on the GGUF q8_0 export",
    "d": "tunesmith serve, 1 LoRA adapter",
    "e": "tunesmith serve, 4 LoRA adapters, traffic spread evenly",
    "p": "tunesmith serve, SST-2 minilm run, POST /v1/predict",
    "q": "tunesmith serve, the SST-2 run's ONNX export (onnxruntime), POST /v1/predict",
}
MODES = {  # seconds per cell (+ grace for the requests in flight), request cap per client, probe requests
    "full": {"seconds": 20.0, "grace": 40.0, "cap_per_client": 12, "probe": 8, "clients": [1, 4, 16]},
    "quick": {"seconds": 5.0, "grace": 20.0, "cap_per_client": 2, "probe": 2, "clients": [1, 4, 16]},
}


# --- what the legs serve ------------------------------------------------------------------
def shared_datasets() -> Path:
    for parent in HERE.parents:
        if (parent / "shared" / "datasets").is_dir():
            return parent / "shared" / "datasets"
    raise SystemExit("../shared/datasets not found beside the checkout")


def run(cmd: list[str], log: Path, env: dict | None = None) -> None:
    with open(log, "w") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env or child_env(), check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed (exit {done.returncode}); end of {log}:\n"
                         + log.read_text()[-2000:])


def child_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONWARNINGS": "ignore", "TRANSFORMERS_VERBOSITY": "error"}


def tunesmith_cli() -> list[str]:
    return [sys.executable, "-m", "tunesmith.cli.main"]


def make_adapters(work: Path, model_dir: Path, count: int = 4) -> list[Path]:
    """LoRA adapters on the base (r 16 on q/k/v/o), each with its own random weights: small enough
    that the replies stay the base model's in length and kind, real enough that every row of a
    mixed batch computes its own adapter."""
    folders = [work / "runs" / f"lora-{i}" for i in range(1, count + 1)]
    if all((f / "adapter_model.safetensors").is_file() for f in folders):
        return folders
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    for i, folder in enumerate(folders, 1):
        torch.manual_seed(i)
        base = AutoModelForCausalLM.from_pretrained(model_dir)
        model = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj",
                                                                                     "o_proj"]))
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.data.normal_(0, 1e-3)
        model.save_pretrained(folder)
    return folders


def make_gguf(work: Path, log_dir: Path) -> Path:
    folder = work / "gguf-q8_0"
    found = sorted(folder.glob("*.gguf"))
    if not found:
        run([*tunesmith_cli(), "export", MODEL, "--to", "gguf", "--quant", "q8_0", "--out", str(folder), "--overwrite"],
            log_dir / "export-gguf.log")
        found = sorted(folder.glob("*.gguf"))
    return found[0]


def make_classifier(work: Path, log_dir: Path, steps: int) -> Path:
    """A short SST-2 run of examples/sst2-minilm.yaml (the serving cost does not depend on how long it trained)."""
    import yaml

    out = work / "runs" / "sst2-minilm"
    if (out / "STATUS").is_file() and (out / "STATUS").read_text().strip() == "succeeded":
        return out
    config = yaml.safe_load((ROOT / "examples" / "sst2-minilm.yaml").read_text())
    sst2 = shared_datasets() / "sst2"
    config["data"].update(train=str(sst2 / "alps_train.tsv"), eval=str(sst2 / "alps_test.tsv"))
    config["train"].update(epochs=1, max_steps=steps, save_steps=10_000, logging_steps=10)
    config["eval"].update(steps=10_000, before_training=False)
    config["output"] = {"dir": str(out), "overwrite": True}
    path = work / "sst2-short.yaml"
    path.write_text(yaml.safe_dump(config))
    run([*tunesmith_cli(), "train", str(path)], log_dir / "train-sst2.log")
    return out


def make_onnx_classifier(work: Path, log_dir: Path, steps: int) -> Path:
    """The SST-2 run exported to ONNX, in a folder under the runs root."""
    out = work / "runs" / "sst2-minilm-onnx"
    if not (out / "model.onnx").is_file():
        run_dir = make_classifier(work, log_dir, steps)
        run([*tunesmith_cli(), "export", str(run_dir), "--to", "onnx", "--out", str(out), "--overwrite"],
            log_dir / "export-onnx.log")
    return out


def request_mix(tokenizer, count: int, seed: int = 0) -> list[list[dict]]:
    """Chat requests whose prompts (chat template included) are 20-200 tokens, uniformly."""
    rows = json.loads((shared_datasets() / "llamafactory_alpaca_demo" / "alpaca_en_demo.json").read_text())
    rng = random.Random(seed)
    return [cut_to(tokenizer, " ".join(r[k] for k in ("instruction", "input", "output") if r.get(k)),
                   rng.randint(20, 200)) for r in rng.sample(rows, count)]


def cut_to(tokenizer, text: str, total: int) -> list[dict]:
    """One user message whose templated prompt is about `total` tokens."""
    overhead = len(tokenizer.apply_chat_template([{"role": "user", "content": ""}], add_generation_prompt=True,
                                                 tokenize=True, return_dict=True)["input_ids"])
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    while len(ids) < total:
        ids = ids + ids
    return [{"role": "user", "content": tokenizer.decode(ids[:max(1, total - overhead)])}]


def sentences(count: int) -> list[str]:
    lines = (shared_datasets() / "sst2" / "alps_test.tsv").read_text().splitlines()[1:]
    return [line.split("\t")[0] for line in lines[:count]]


# --- servers ------------------------------------------------------------------------------
@dataclass
class Server:
    leg: str
    cmd: list[str]
    port: int
    models: list[str]
    env: dict = field(default_factory=child_env)
    ready_path: str = "/v1/models"  # answers 200 once the server is up
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, log: Path, timeout: float = 300) -> float:
        import httpx

        began = time.perf_counter()
        self.log = log
        self.proc = subprocess.Popen(self.cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True)
        while time.perf_counter() - began < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode}; end of {log}:\n{log.read_text()[-1500:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}{self.ready_path}", timeout=2).status_code == 200:
                    return time.perf_counter() - began
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"not ready after {timeout:.0f} s; see {log}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # the server's own process group, started above
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def servers(legs: list[str], work: Path, model_dir: Path, args, log_dir: Path) -> dict:
    out = {}
    for leg in legs:
        port = free_port()
        if leg == "a":
            naive = [sys.executable, str(HERE / "_naive_server.py"), str(model_dir), "--port", str(port)]
            out[leg] = Server(leg, naive, port, [MODEL], ready_path="/health")
        elif leg == "b":
            cli = shutil.which("transformers", path=str(Path(sys.executable).parent)) or "transformers"
            out[leg] = Server(leg, [cli, "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
                                    "--device", "cpu", "--dtype", "float32"], port, [str(model_dir)],
                              ready_path="/health")  # its /v1/models lists the hub cache, absent offline
        elif leg == "c":
            python = llama_python(Path(args.llama_venv))
            out[leg] = Server(leg, [str(python), "-m", "llama_cpp.server", "--model", str(make_gguf(work, log_dir)),
                                    "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(os.cpu_count()),
                                    "--n_ctx", "2048",
                                    # by default a new request cuts the one streaming (it ends early, short):
                                    # queue them instead, as the other servers do
                                    "--interrupt_requests", "False"], port, [MODEL])
        elif leg in "de":
            adapters = make_adapters(work, model_dir)[: 1 if leg == "d" else 4]
            out[leg] = Server(leg, [*tunesmith_cli(), "serve", *map(str, adapters), "--port", str(port),
                                    "--runs-root", str(work / "runs")], port, [a.name for a in adapters])
        elif leg in "pq":
            make = make_classifier if leg == "p" else make_onnx_classifier
            run_dir = make(work, log_dir, args.classifier_steps)
            out[leg] = Server(leg, [*tunesmith_cli(), "serve", str(run_dir), "--port", str(port),
                                    "--runs-root", str(work / "runs")], port, [run_dir.name])
    return out


def llama_python(venv: Path) -> Path:
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import llama_cpp.server"]
    if not python.exists() or subprocess.run(probe, capture_output=True, check=False).returncode != 0:
        raise RuntimeError(f"llama-cpp-python[server] is not installed in {venv} (llama_cpp.server does not "
                           f"import): {venv}/bin/pip install 'llama-cpp-python[server]' (it compiles llama.cpp)")
    return python


# --- load ---------------------------------------------------------------------------------
@dataclass
class Outcome:
    ok: bool
    seconds: float
    ttft: float | None = None
    tokens: int = 0
    prompt_tokens: int | None = None
    error: str | None = None


async def chat_once(client, model: str, messages: list[dict], max_tokens: int, count_tokens, live: dict) -> Outcome:
    """One streamed chat request; `live["text"]` holds what has arrived (for a request cut short)."""
    began = time.perf_counter()
    ttft, text, usage = None, "", None
    try:
        stream = await client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens,
                                                      temperature=0, stream=True,
                                                      stream_options={"include_usage": True})
        async for chunk in stream:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                if choice.delta and choice.delta.content:
                    ttft = ttft if ttft is not None else time.perf_counter() - began
                    text += choice.delta.content
                    live["text"] = text
    except Exception as err:  # any failure is an error of the cell, named in the report
        return Outcome(False, time.perf_counter() - began, error=f"{type(err).__name__}: {str(err)[:200]}")
    tokens = usage.completion_tokens if usage and usage.completion_tokens else count_tokens(text)
    return Outcome(True, time.perf_counter() - began, ttft, tokens, usage.prompt_tokens if usage else None)


async def predict_once(client, model: str, sentence: str, live: dict) -> Outcome:
    began = time.perf_counter()
    try:
        answer = await client.post("/predict", cast_to=object, body={"model": model, "input": {"sentence": sentence}})
        if not answer.get("data"):
            raise ValueError(f"no prediction in {str(answer)[:200]}")
    except Exception as err:
        return Outcome(False, time.perf_counter() - began, error=f"{type(err).__name__}: {str(err)[:200]}")
    return Outcome(True, time.perf_counter() - began)


async def cell(server: Server, clients: int, seconds: float, cap: int, make_call, grace: float,
               count_tokens=None) -> dict:
    """`clients` loops, each sending its next request when the last is answered, until time or cap;
    requests still running `grace` seconds after that are cut (counted apart, not as errors; the
    tokens they had streamed count in tokens/s)."""
    import openai

    client = openai.AsyncOpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=600)
    outcomes: list[Outcome] = []
    in_flight: list[dict] = []
    issued = 0
    began = time.perf_counter()

    async def loop() -> None:
        nonlocal issued
        while time.perf_counter() - began < seconds and issued < cap:
            k, live = issued, {"text": ""}
            issued += 1
            in_flight.append(live)
            outcomes.append(await make_call(client, k, live))
            in_flight.remove(live)

    try:
        await asyncio.wait_for(asyncio.gather(*(loop() for _ in range(clients))), seconds + grace)
    except asyncio.TimeoutError:
        pass
    span = time.perf_counter() - began
    await client.close()
    partial = sum(count_tokens(live["text"]) for live in in_flight) if count_tokens else 0
    stats = summarize(outcomes, clients, span, partial)
    return {**stats, "cut": issued - len(outcomes), "cut_tokens": partial}


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def summarize(outcomes: list[Outcome], clients: int, span: float, partial: int = 0) -> dict:
    ok = [o for o in outcomes if o.ok]
    ttfts = [o.ttft for o in ok if o.ttft is not None]
    prompts = [o.prompt_tokens for o in ok if o.prompt_tokens]
    errors = [o.error for o in outcomes if not o.ok]
    return {"clients": clients, "requests": len(ok), "errors": len(errors), "error_examples": sorted(set(errors))[:3],
            "seconds": span, "output_tokens": sum(o.tokens for o in ok) + partial,
            "tokens_per_s": (sum(o.tokens for o in ok) + partial) / span, "requests_per_s": len(ok) / span,
            "ttft_p50": pct(ttfts, 50), "ttft_p95": pct(ttfts, 95),
            "latency_p50": pct([o.seconds for o in ok], 50), "latency_p95": pct([o.seconds for o in ok], 95),
            "mean_prompt_tokens": statistics.mean(prompts) if prompts else None,
            "mean_output_tokens": statistics.mean([o.tokens for o in ok]) if ok else None}


def measure_generation(server: Server, mode: dict, mix: list, probe: list, count_tokens, max_tokens: int) -> dict:
    def chat(messages_of, limit=max_tokens):
        def call(client, k, live):
            return chat_once(client, server.models[k % len(server.models)], messages_of(k), limit, count_tokens, live)
        return call

    result = {"cells": []}
    # warm-up (first-request costs are not measured), then the TTFT probe: a few tokens are enough
    asyncio.run(cell(server, 1, 1e9, len(server.models), chat(lambda k: mix[k], 4), 0))
    result["probe_50_tokens"] = asyncio.run(cell(server, 1, 1e9, len(probe), chat(lambda k: probe[k], 4), 0))
    for clients in mode["clients"]:
        offset = 1000 * clients  # each cell starts at its own place in the mix, wrapping around
        call = chat(lambda k, o=offset: mix[(o + k) % len(mix)])
        cap = mode["cap_per_client"] * clients
        stats = asyncio.run(cell(server, clients, mode["seconds"], cap, call, mode["grace"], count_tokens))
        result["cells"].append(stats)
        print(f"    {clients:>2} clients: {stats['tokens_per_s']:7.1f} tok/s, {stats['requests_per_s']:5.2f} req/s, "
              f"TTFT p50 {fmt_ms(stats['ttft_p50'])}, errors {stats['errors']}, cut {stats['cut']}", flush=True)
    return result


def measure_predict(server: Server, mode: dict, texts: list[str]) -> dict:
    def call(client, k, live):
        return predict_once(client, server.models[0], texts[k % len(texts)], live)

    asyncio.run(cell(server, 1, 1e9, 3, call, 0))
    result = {"cells": []}
    for clients in (1, 16):
        stats = asyncio.run(cell(server, clients, mode["seconds"], 100_000, call, mode["grace"]))
        result["cells"].append(stats)
        print(f"    {clients:>2} clients: {stats['requests_per_s']:6.1f} req/s, p95 {fmt_ms(stats['latency_p95'])}, "
              f"errors {stats['errors']}", flush=True)
    return result


def fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f} ms"


# --- the run ------------------------------------------------------------------------------
def versions(args) -> dict:
    from importlib.metadata import version

    out = {name: version(name) for name in ("torch", "transformers", "peft", "openai", "fastapi", "uvicorn")}
    python = Path(args.llama_venv) / "bin" / "python"
    if python.exists():
        done = subprocess.run([str(python), "-c", "import llama_cpp; print(llama_cpp.__version__)"],
                              capture_output=True, text=True, check=False)
        out["llama-cpp-python"] = done.stdout.strip() or None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short cells (5 s, 2 requests per client)")
    parser.add_argument("--legs", default="a,b,c,d,e,p,q", help="legs in run order: a, b, c, d, e, p, q")
    parser.add_argument("--reuse", default="", help="legs taken from the last report (OUT's JSON), e.g. a,b,c")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per cell (default: by mode)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--classifier-steps", type=int, default=60, help="training steps of the SST-2 run")
    parser.add_argument("--llama-venv", default=str(Path(sys.executable).parent.parent),
                        help="venv with llama-cpp-python[server] (default: this interpreter's)")
    parser.add_argument("--clients", default=None, help="concurrent clients per cell, e.g. 1,4 (default: 1,4,16)")
    parser.add_argument("--work", default="/tmp/serve-bench", help="adapters, exports, runs and logs")
    parser.add_argument("--out", default=str(ROOT / "docs" / "serving.md"))
    parser.add_argument("--json", default=str(ROOT / "docs" / "serve_load.json"))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped: the `finally` stops the server
    mode = dict(MODES["quick" if args.quick else "full"])
    if args.seconds:
        mode["seconds"] = args.seconds
    if args.clients:
        mode["clients"] = [int(n) for n in args.clients.split(",")]

    from transformers import AutoTokenizer

    from tunesmith.models import resolve_model

    work = Path(args.work)
    log_dir = work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model_dir = resolve_model(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    mix = request_mix(tokenizer, 400)
    probe = [cut_to(tokenizer, m[0]["content"] * 3, 50) for m in mix[: mode["probe"]]]

    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    legs = [leg for leg in args.legs.split(",") if leg]
    from _serve_report import previous_results, write_report

    results = previous_results(Path(args.json), args.reuse)
    load_before = os.getloadavg()
    for leg in legs:
        print(f"[{time.strftime('%H:%M:%S')}] leg {leg}: {LEGS[leg]}", flush=True)
        entry = {"leg": leg, "what": LEGS[leg]}
        server = None
        try:
            server = servers([leg], work, model_dir, args, log_dir)[leg]
            entry["startup_seconds"] = server.start(log_dir / f"{leg}.log")
            if leg in "pq":
                entry.update(measure_predict(server, mode, sentences(400)))
            else:
                entry.update(measure_generation(server, mode, mix, probe, count_tokens, args.max_tokens))
        except (RuntimeError, SystemExit) as err:  # a leg that cannot run here is reported, not fatal
            entry["not_run"] = str(err)[-1500:]
            print(f"    not run: {str(err)[-400:]}", flush=True)
        finally:
            if server is not None:
                server.stop()
        results[leg] = entry
        machine = {"cpu": cpu_name(), "cores": os.cpu_count(), "bf16": "avx512_bf16" in cpu_flags(),
                   "load_average_before": load_before, "load_average_after": os.getloadavg(),
                   "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   "wall_seconds": time.perf_counter() - started, "versions": versions(args)}
        options = {"mode": "quick" if args.quick else "full", **mode, "max_tokens": args.max_tokens,
                   "legs": args.legs, "reuse": args.reuse, "classifier_steps": args.classifier_steps}
        command = " ".join(["python", "benchmarks/serve_load.py", *sys.argv[1:]])
        write_report(Path(args.out), Path(args.json), results, machine, options, command)
    print(f"done in {time.perf_counter() - started:.0f} s; wrote {args.out} and {args.json}", flush=True)


def cpu_flags() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_name() -> str:
    for line in cpu_flags().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
