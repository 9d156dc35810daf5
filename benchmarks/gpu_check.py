"""GPU readiness: every GPU path of tunesmith on this machine's CUDA GPUs, one table at the end.

    bash benchmarks/gpu_check.sh                 # installs what it needs, then runs this
    python benchmarks/gpu_check.py --only lora,ddp --steps 20 --model smollm2-135m-instruct

Checks (each a `tunesmith train` / `tunesmith serve` process of its own, as a user runs them):
  lora        bf16 LoRA SFT with packing, SDPA attention, 1 GPU
  flash       the same with flash-attention 2 (varlen over packed rows), where flash_attn is installed
  qlora       4-bit QLoRA (bitsandbytes), 1 GPU
  ddp / fsdp  LoRA on all GPUs (train.distributed.strategy ddp, fsdp = FSDP2)
  deepspeed   full fine-tuning with DeepSpeed ZeRO-3 on all GPUs
  parity      fp32 LoRA, the same run on the CPU and on GPU 0: the difference of their loss curves
  vllm        `tunesmith serve --engine vllm` on the lora run: 32 concurrent chat completions
  throughput  benchmarks/sft_throughput.py, tunesmith's leg (its own table in its output file)
Per check: status, seconds, real tokens/s (training), MFU (6 x parameters x tokens/s over the GPUs'
bf16 peak), peak GPU memory (nvidia-smi, sampled), and the loss parity with the CPU run.
The parsing and the config generation run in the CPU test suite (tests/test_distributed.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ("lora", "flash", "qlora", "ddp", "fsdp", "deepspeed", "parity", "vllm", "throughput")
TRAINING = {"lora", "flash", "qlora", "ddp", "fsdp", "deepspeed", "parity"}
# dense bf16 peak FLOP/s per GPU, by a part of the name nvidia-smi reports (for MFU)
PEAK_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L40": 181e12, "A10": 125e12,
              "L4": 121e12, "A6000": 155e12, "4090": 165e12, "3090": 71e12, "V100": 125e12, "T4": 65e12}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="zoo name, folder or hub id")
    parser.add_argument("--data", default=str(ROOT / "examples" / "data" / "identity_train.jsonl"))
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per training check")
    parser.add_argument("--batch", type=int, default=8, help="rows per step over all GPUs")
    parser.add_argument("--gpus", type=int, default=None, help="GPUs to use (default: all)")
    parser.add_argument("--only", default=",".join(CHECKS), help="checks to run, comma-separated")
    parser.add_argument("--work", default="/tmp/tunesmith-gpu-check")
    parser.add_argument("--out", default=None, help="also write the table as JSON here")
    args = parser.parse_args(argv)
    args.only = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = set(args.only) - set(CHECKS)
    if unknown:
        parser.error(f"unknown check(s) {', '.join(sorted(unknown))}; known: {', '.join(CHECKS)}")
    if args.gpus is not None and args.gpus < 1:
        parser.error("--gpus must be at least 1")
    return args


def training_config(check: str, args, gpus: int, work: Path) -> dict:
    """The run config of one training check (plain data, as a config file holds it)."""
    nproc = gpus if check in ("ddp", "fsdp", "deepspeed") else 1
    method: dict = {"name": "lora", "r": 16, "alpha": 32, "dropout": 0.0}
    train: dict = {"max_steps": args.steps, "batch_size": max(1, args.batch // nproc), "learning_rate": 1e-4,
                   "logging_steps": 1, "save_steps": 10_000, "precision": "bf16", "packing": True, "seed": 42,
                   "scheduler": "constant"}
    model: dict = {"name_or_path": args.model}
    if check == "qlora":
        method["name"] = "qlora"
    if check == "flash":
        model["attn_implementation"] = "flash_attention_2"
    if check == "parity":
        train.update(precision="fp32", max_steps=min(args.steps, 10))
    if check == "deepspeed":
        method = {"name": "full"}
        train["learning_rate"] = 1e-5
    if nproc > 1:
        train["distributed"] = {"nproc": nproc, "strategy": check}
        if check == "deepspeed":
            train["distributed"]["zero_stage"] = 3
    return {"model": model, "data": {"train": [args.data], "cutoff_len": 512}, "method": method, "train": train,
            "eval": {"before_training": False}, "output": {"dir": str(work / check), "overwrite": True}}


def plan(args, gpus: int, available: dict[str, bool]) -> list[tuple[str, str | None]]:
    """(check, reason it is skipped or None) in run order."""
    needs = {"flash": "flash_attn", "qlora": "bitsandbytes", "deepspeed": "deepspeed", "vllm": "vllm"}
    rows = []
    for check in args.only:
        reason = None
        if check in needs and not available.get(needs[check], False):
            reason = f"{needs[check]} is not installed"
        elif check in ("ddp", "fsdp", "deepspeed") and gpus < 2:
            reason = "needs 2 or more GPUs"
        rows.append((check, reason))
    return rows


def mfu(parameters: int, tokens_per_second: float | None, gpu_name: str, gpus: int) -> float | None:
    """Model FLOPs utilisation: 6 FLOPs per parameter per trained token, over the GPUs' peak."""
    peak = next((flops for key, flops in PEAK_FLOPS.items() if key in gpu_name), None)
    if not peak or not tokens_per_second:
        return None
    return 6 * parameters * tokens_per_second / (peak * gpus)


def run_summary(run: Path) -> dict:
    """Tokens/s, the loss curve and the parameter count of a finished run directory."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] if (
        run / "metrics.jsonl").is_file() else []
    rates = [r["tokens_per_second"] for r in rows if "tokens_per_second" in r][1:]  # the first step warms up
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()] if (
        run / "events.jsonl").is_file() else []
    setup = next((e for e in events if e["event"] == "setup"), {})
    return {"tokens_per_second": sum(rates) / len(rates) if rates else None,
            "losses": [r["loss"] for r in rows if "loss" in r], "parameters": setup.get("total", 0)}


def format_table(rows: list[dict]) -> str:
    head = ("check", "status", "seconds", "tokens/s", "MFU", "peak GiB", "loss parity")
    lines = [head]
    for r in rows:
        lines.append((r["check"], r["status"], _fmt(r.get("seconds"), "{:.0f}"),
                      _fmt(r.get("tokens_per_second"), "{:.0f}"), _fmt(r.get("mfu"), "{:.1%}"),
                      _fmt(r.get("peak_gib"), "{:.1f}"), _fmt(r.get("parity"), "{:.2e}")))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)) for line in lines)


def _fmt(value, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


class PeakMemory:
    """The highest total memory in use on the GPUs while a check runs (nvidia-smi, every 0.5 s)."""

    def __init__(self):
        self.peak_mib, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.wait(0.5):
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True).stdout
            self.peak_mib = max(self.peak_mib, max((int(v) for v in out.split() if v.isdigit()), default=0))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _tunesmith(*arguments: str, env: dict | None = None, log: Path) -> int:
    command = [sys.executable, "-m", "tunesmith.cli.main", *arguments]
    with open(log, "w") as out:
        environment = {**os.environ, **(env or {})}
        return subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=environment).returncode


def run_training(check: str, args, gpus: int, work: Path, gpu_name: str) -> dict:
    import yaml

    config = training_config(check, args, gpus, work)
    file = work / f"{check}.yaml"
    file.write_text(yaml.safe_dump(config))
    started = time.time()
    with PeakMemory() as memory:
        code = _tunesmith("train", str(file), log=work / f"{check}.log")
    row = {"check": check, "status": "ok" if code == 0 else f"failed ({work / check}.log)",
           "seconds": time.time() - started, "peak_gib": memory.peak_mib / 1024}
    summary = run_summary(Path(config["output"]["dir"]))
    nproc = config["train"].get("distributed", {}).get("nproc", 1)
    row.update(tokens_per_second=summary["tokens_per_second"],
               mfu=mfu(summary["parameters"], summary["tokens_per_second"], gpu_name, nproc))
    if check == "parity" and code == 0:
        cpu = dict(config, output={"dir": str(work / "parity-cpu"), "overwrite": True})
        (work / "parity-cpu.yaml").write_text(yaml.safe_dump(cpu))
        _tunesmith("train", str(work / "parity-cpu.yaml"), env={"CUDA_VISIBLE_DEVICES": ""},
                   log=work / "parity-cpu.log")
        on_cpu = run_summary(work / "parity-cpu")["losses"]
        if on_cpu and len(on_cpu) == len(summary["losses"]):
            row["parity"] = max(abs(a - b) for a, b in zip(on_cpu, summary["losses"]))
    return row


def run_vllm(work: Path) -> dict:
    """Serve the lora check's run with the vLLM engine; 32 concurrent requests."""
    import concurrent.futures
    import urllib.request

    port = 18000 + os.getpid() % 1000
    log = open(work / "vllm.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "tunesmith.cli.main", "serve", str(work / "lora"), "--engine",
                               "vllm", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 300
        while time.time() < deadline and server.poll() is None:
            try:
                models = json.load(urllib.request.urlopen(f"{url}/models", timeout=2))
                break
            except OSError:
                time.sleep(2)
        else:
            return {"check": "vllm", "status": f"failed to start ({work / 'vllm.log'})"}
        name = models["data"][0]["id"]

        def ask(i):
            body = json.dumps({"model": name, "max_tokens": 64,
                               "messages": [{"role": "user", "content": f"Who are you? ({i})"}]}).encode()
            request = urllib.request.Request(f"{url}/chat/completions", body, {"Content-Type": "application/json"})
            return json.load(urllib.request.urlopen(request, timeout=120))["usage"]["completion_tokens"]

        started = time.time()
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            tokens = sum(pool.map(ask, range(32)))
        seconds = time.time() - started
        return {"check": "vllm", "status": "ok", "seconds": seconds, "tokens_per_second": tokens / seconds}
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


def run_throughput(work: Path) -> dict:
    started = time.time()
    with open(work / "throughput.log", "w") as out:
        code = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sft_throughput.py"), "--legs", "c",
                               "--steps", "12", "--work", str(work / "throughput"),
                               "--out", str(work / "throughput.md")], stdout=out, stderr=subprocess.STDOUT).returncode
    return {"check": "throughput", "status": "ok (table in throughput.md)" if code == 0 else "failed",
            "seconds": time.time() - started}


def main(argv: list[str] | None = None) -> int:
    import importlib.util

    import torch

    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA GPU visible: this check is for GPU machines (the CPU paths run in the test suite)")
        return 2
    gpus = args.gpus or torch.cuda.device_count()
    gpu_name = torch.cuda.get_device_name(0)
    packages = ("flash_attn", "bitsandbytes", "deepspeed", "vllm")
    available = {m: importlib.util.find_spec(m) is not None for m in packages}
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for check, skipped in plan(args, gpus, available):
        print(f"== {check}", flush=True)
        if skipped:
            rows.append({"check": check, "status": f"skipped: {skipped}"})
        elif check in TRAINING:
            rows.append(run_training(check, args, gpus, work, gpu_name))
        elif check == "vllm":
            rows.append(run_vllm(work))
        else:
            rows.append(run_throughput(work))
    print(f"\n{gpus} x {gpu_name}, model {args.model}, {args.steps} steps\n")
    print(format_table(rows))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0 if all(r["status"].startswith(("ok", "skipped")) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
