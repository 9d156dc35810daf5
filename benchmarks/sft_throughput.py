"""SFT throughput, side by side: (a) plain Trainer + PEFT, (b) LLaMA-Factory 0.9.5, (c) tunesmith.

(d) is tunesmith's full fine-tuning and (e) leg (c) with `train.torch_compile: true`.

    nice -n 10 /work/main/.venv/bin/python benchmarks/sft_throughput.py            # all legs
    ... --steps 12 --legs b,c,a --lf-venv /work/lf-venv --out docs/benchmarks.md

Same model (smollm2-135m-instruct, tunesmith's safetensors conversion), same rows (the first 200
of alpaca_en_demo, eval on the next 50), LoRA r=16 alpha=32 dropout 0 on q_proj,v_proj, lr 1e-4
cosine, batch 8 examples per optimizer step, cutoff 512, seed 42, a bounded number of optimizer
steps per leg. Each leg runs in its own process (peak RSS is that process's) and is measured by
benchmarks/_probe.py inside it: real (non-pad) tokens per second of the training loop, the share
of padding processed, the logged losses, and eval loss on the 50 held-out rows.

LLaMA-Factory runs from its own venv. When missing, it is created (documented recipe):
    python3 -m venv LF_VENV && LF_VENV/bin/pip install torch==2.13.0 llamafactory==0.9.5
    LF_VENV/bin/pip uninstall -y torchvision torchaudio   # built for another torch; do not load
    and an empty `torchaudio` package (LLaMA-Factory imports it, uses it only for audio data).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

DATA = "llamafactory_alpaca_demo/alpaca_en_demo.json"
LEGS = {
    "a": "transformers Trainer + PEFT, fp32, padding=max_length",
    "b": "LLaMA-Factory 0.9.5 (fp32, its defaults)",
    "c": "tunesmith (defaults: precision auto, packing)",
    "d": "tunesmith, full fine-tuning (defaults)",
    "e": "tunesmith, train.torch_compile (each layer compiled)",
}
# x parameters: LoRA (frozen weights: no weight gradients) / full
FLOPS_PER_TOKEN = {"a": 4, "b": 4, "c": 4, "d": 6, "e": 4}
TUNESMITH_LEGS = "cde"  # tunesmith's `train(config)` from a YAML config (benchmarks/_leg_tunesmith.py)


def shared_datasets() -> Path:
    for parent in HERE.parents:
        if (parent / "shared" / "datasets").is_dir():
            return parent / "shared" / "datasets"
    raise SystemExit("../shared/datasets not found beside the checkout")


def ensure_lf_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import llamafactory"], capture_output=True, check=False).returncode == 0:
        return python
    print(f"installing LLaMA-Factory 0.9.5 into {venv} (one time)...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q"]
    subprocess.run(pip + ["torch==2.13.0", "llamafactory==0.9.5"], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "uninstall", "-y", "-q", "torchvision", "torchaudio"], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "torchaudio").mkdir(exist_ok=True)
    (site / "torchaudio" / "__init__.py").write_text('"""Empty: LLaMA-Factory imports torchaudio only for audio."""\n')
    return python


def write_data(work: Path, rows: int, eval_rows: int) -> tuple[Path, Path]:
    data = json.loads((shared_datasets() / DATA).read_text())
    train, evals = work / "train.json", work / "eval.json"
    train.write_text(json.dumps(data[:rows], ensure_ascii=False))
    evals.write_text(json.dumps(data[rows : rows + eval_rows], ensure_ascii=False))
    info = {"bench_train": {"file_name": "train.json"}, "bench_eval": {"file_name": "eval.json"}}
    (work / "dataset_info.json").write_text(json.dumps(info))
    return train, evals


def leg_configs(args, work: Path, model_dir: Path, train: Path, evals: Path) -> dict:
    common = dict(lora_r=16, lora_alpha=32, lora_targets=["q_proj", "v_proj"], batch_size=8,
                  learning_rate=1e-4, cutoff_len=512, max_steps=args.steps, seed=42)
    hf = {**common, "max_steps": args.baseline_steps or args.steps, "model": str(model_dir), "train_file": str(train), "eval_file": str(evals),
          "output_dir": str(work / "a-out"), "evaluate": not args.no_baseline_eval}
    lf = {
        "model_name_or_path": str(model_dir), "stage": "sft", "do_train": True, "do_eval": True,
        "finetuning_type": "lora", "lora_rank": 16, "lora_alpha": 32, "lora_dropout": 0.0,
        "lora_target": "q_proj,v_proj", "dataset": "bench_train", "eval_dataset": "bench_eval",
        "dataset_dir": str(work), "template": "chatml", "cutoff_len": 512, "overwrite_cache": True,
        "output_dir": str(work / "b-out"), "overwrite_output_dir": True, "logging_steps": 1,
        "save_strategy": "no", "eval_strategy": "no", "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 8, "gradient_accumulation_steps": 1, "learning_rate": 1e-4,
        "num_train_epochs": 1.0, "max_steps": args.steps, "lr_scheduler_type": "cosine",
        "warmup_ratio": 0.0, "report_to": "none", "seed": 42, "plot_loss": False,
        "disable_tqdm": True,
    }
    ts = {
        "model": {"name_or_path": str(model_dir)},
        "data": {"train": [str(train)], "eval": [str(evals)], "template": "chatml", "cutoff_len": 512,
                 "cache": False},
        "method": {"name": "lora", "r": 16, "alpha": 32, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
        "train": {"epochs": 1, "max_steps": args.steps, "batch_size": 8, "learning_rate": 1e-4,
                  "scheduler": "cosine", "logging_steps": 1, "save_steps": 10_000, "seed": 42,
                  "threads": args.threads},
        "eval": {"batch_size": 8, "before_training": False},
        "output": {"dir": str(work / "c-out"), "overwrite": True},
    }
    full = {**ts, "method": {"name": "full"}, "train": {**ts["train"], "learning_rate": 1e-5},
            "output": {"dir": str(work / "d-out"), "overwrite": True}}
    compiled = {**ts, "train": {**ts["train"], "torch_compile": True},
                "output": {"dir": str(work / "e-out"), "overwrite": True}}
    return {"a": hf, "b": lf, "c": ts, "d": full, "e": compiled}


def run_leg(leg: str, python: str, config: dict, work: Path, threads: int | None) -> dict:
    import yaml

    ours = leg in TUNESMITH_LEGS
    config_file = work / f"{leg}-config{'.yaml' if ours else '.json'}"
    config_file.write_text(yaml.safe_dump(config) if ours else json.dumps(config, indent=1))
    script = "_leg_tunesmith.py" if ours else {"a": "_leg_hf_baseline.py", "b": "_leg_llamafactory.py"}[leg]
    probe_out = work / f"{leg}-probe.json"
    env = {**os.environ, "BENCH_PROBE_OUT": str(probe_out), "DISABLE_VERSION_CHECK": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    log = work / f"{leg}.log"
    print(f"[{time.strftime('%H:%M:%S')}] leg {leg}: {LEGS[leg]} (log: {log})", flush=True)
    start = time.time()
    with open(log, "w") as out:
        done = subprocess.run([python, str(HERE / script), str(config_file)], stdout=out, stderr=subprocess.STDOUT,
                              env=env, cwd=work, check=False)
    wall = time.time() - start
    if not probe_out.exists() or not json.loads(probe_out.read_text())["steps"]:
        tail = log.read_text()[-3000:]
        raise SystemExit(f"leg {leg} failed (exit {done.returncode}); end of {log}:\n{tail}")
    if done.returncode != 0:
        print(f"leg {leg} exited with {done.returncode} after training; see {log}", flush=True)
    stats = json.loads(probe_out.read_text())
    stats["process_wall_seconds"] = wall
    stats["exit_code"] = done.returncode
    return stats


def cross_eval(model_dir: Path, adapter: Path, evals: Path, threads: int | None) -> float | None:
    """The leg's adapter scored by benchmarks/_cross_eval.py, identical for every leg."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    done = subprocess.run([sys.executable, str(HERE / "_cross_eval.py"), str(model_dir), str(adapter), str(evals)],
                          capture_output=True, text=True, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])["eval_loss"] if lines else None


def measure_peak(model_dir: Path, tokens: int, threads: int | None) -> dict:
    """bf16 and fp32 matmul GFLOP/s at the model's own shapes (benchmarks/_peak.py, own process)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    done = subprocess.run([sys.executable, str(HERE / "_peak.py"), str(model_dir), str(tokens)],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def best_peak(runs: list[dict]) -> dict:
    """The higher of the measurements (before and after the legs) for each dtype."""
    best = dict(runs[0])
    for dtype in ("fp32", "bf16"):
        best[dtype] = max((r[dtype] for r in runs), key=lambda d: d["peak_gflops"])
    best["measured"] = len(runs)
    return best


def share_of_peak(result: dict, peak: dict) -> dict:
    """tokens/s x FLOPs per token / peak, against the fp32 and the bf16 peak."""
    flops = FLOPS_PER_TOKEN[result["leg"]] * peak["params"]
    achieved = result["real_tokens_per_s"] * flops / 1e9
    return {"flops_per_token": flops, "achieved_gflops": round(achieved, 1),
            **{dtype: achieved / peak[dtype]["peak_gflops"] for dtype in ("fp32", "bf16")}}


def summarize(leg: str, s: dict) -> dict:
    losses = [r["loss"] for r in s["logs"] if "loss" in r]
    evals = [r["eval_loss"] for r in s["logs"] if "eval_loss" in r]
    steady_tokens = s["tokens_real"] - s.get("tokens_real_first_step", 0)
    steady_time = s["loop_seconds"] - (s["first_step_seconds"] or 0)
    return {
        "leg": leg, "what": LEGS[leg], "optimizer_steps": s["steps"],
        "real_tokens": s["tokens_real"], "processed_tokens": s["tokens_processed"],
        "real_tokens_per_s": s["tokens_real"] / s["loop_seconds"],
        "real_tokens_per_cpu_s": s["tokens_real"] / s["loop_cpu_seconds"],
        "loop_cpu_seconds": s["loop_cpu_seconds"],
        "steady_real_tokens_per_s": steady_tokens / steady_time if steady_time > 0 else None,
        "padding_share": 1 - s["tokens_real"] / s["tokens_processed"],
        "peak_rss_mb": s["peak_rss_mb"], "train_loop_seconds": s["loop_seconds"],
        "wall_seconds": s["process_wall_seconds"],
        "first_loss": losses[0] if losses else None, "final_loss": losses[-1] if losses else None,
        "mean_train_loss": sum(losses) / len(losses) if losses else None,
        "eval_loss": evals[-1] if evals else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=25, help="optimizer steps per leg (25 x 8 examples = 1 epoch of 200 rows)")
    parser.add_argument("--baseline-steps", type=int, default=None,
                        help="optimizer steps for leg (a) (default: --steps); it is the slowest leg")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--eval-rows", type=int, default=50)
    parser.add_argument("--legs", default="b,c,d,a",
                        help="legs in run order: a, b, c, d (full fine-tuning), e (c with train.torch_compile)")
    parser.add_argument("--peak-tokens", type=int, default=1600,
                        help="rows of the peak matmuls (about one step's tokens: 8 examples)")
    parser.add_argument("--no-baseline-eval", action="store_true",
                        help="skip leg (a)'s eval (50 rows padded to 512 cost more than its training)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in every leg (default: all cores). On a machine shared "
                        "with other work, 1 keeps a leg's threads from waiting on each other's time slices")
    parser.add_argument("--reuse", default="",
                        help="legs whose results are taken from the last report (OUT with .json), e.g. a,b "
                        "to re-measure only tunesmith after a change; the report says so")
    parser.add_argument("--lf-venv", default="/work/lf-venv")
    parser.add_argument("--work", default="/tmp/tunesmith-bench")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()

    from tunesmith.models import resolve_model

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model_dir = resolve_model("smollm2-135m-instruct")
    train, evals = write_data(work, args.rows, args.eval_rows)
    configs = leg_configs(args, work, model_dir, train, evals)
    legs = args.legs.split(",")
    pythons = {leg: sys.executable for leg in LEGS}
    if "b" in legs:
        pythons["b"] = str(ensure_lf_venv(Path(args.lf_venv)))
    from _report import write_report

    load_before = os.getloadavg()
    command = " ".join(["python", "benchmarks/sft_throughput.py", *sys.argv[1:]])
    results, reused = _reused(Path(args.out).with_suffix(".json"), args.reuse)
    adapters = {"b": work / "b-out", "c": work / "c-out" / "adapter", "e": work / "e-out" / "adapter"}
    print(f"[{time.strftime('%H:%M:%S')}] matmul peak at the model's shapes", flush=True)
    peaks = [measure_peak(model_dir, args.peak_tokens, args.threads)]
    for i, leg in enumerate(legs):  # the report is rewritten after every leg: a stopped run keeps what it measured
        results.append(summarize(leg, run_leg(leg, pythons[leg], configs[leg], work, args.threads)))
        if leg in adapters:
            results[-1]["eval_loss_same_evaluator"] = cross_eval(model_dir, adapters[leg], evals, args.threads)
        if i == len(legs) - 1:
            peaks.append(measure_peak(model_dir, args.peak_tokens, args.threads))
        peak = best_peak(peaks)
        for r in results:
            r["share_of_peak"] = share_of_peak(r, peak)
        machine = {"cpu": _cpu_name(), "cores": os.cpu_count(), **reused, "matmul_peak": peak,
                   "load_average_before": load_before, "load_average_after": os.getloadavg(),
                   "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        write_report(Path(args.out), results, machine, command, vars(args))


def _reused(previous: Path, legs: str) -> tuple[list[dict], dict]:
    """Results of `legs` from the previous report, and a note of where they came from."""
    if not legs:
        return [], {}
    report = json.loads(previous.read_text())
    wanted = legs.split(",")
    results = [r for r in report["results"] if r["leg"] in wanted]
    if len(results) != len(wanted):
        raise SystemExit(f"--reuse {legs}: {previous} has legs {[r['leg'] for r in report['results']]}")
    return results, {"reused": {"legs": wanted, "measured": report["machine"]["finished"],
                                "load_average_then": report["machine"]["load_average_before"]}}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
