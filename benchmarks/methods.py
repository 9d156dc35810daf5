"""Every registered method on smollm2-135m-instruct for the same training tokens.

Data: the first rows of ../shared/datasets/llamafactory_alpaca_demo/alpaca_en_demo.json for
training (--train-rows of the first 200) and rows 200-249 for evaluation. Every method sees the
same rows, cutoff and epochs, so the same real (non-padding) training tokens; learning rates
are each family's usual one (not tuned). Each method runs in its own process so its peak RSS
is its own. Writes the table into docs/methods.md between the benchmark markers.

    nice -n 10 python benchmarks/methods.py            # all methods available here
    python benchmarks/methods.py --methods lora dora   # a subset (the table then holds only those)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DATASET = "llamafactory_alpaca_demo/alpaca_en_demo.json"
# Usual learning rates per family (papers / PEFT examples); not tuned for this benchmark.
LEARNING_RATES = {
    "full": 1e-5, "freeze": 1e-5, "galore": 1e-5, "embeddings-only": 1e-4, "bitfit": 1e-3,
    "ia3": 3e-3, "adalora": 1e-3, "bottleneck": 1e-3, "prefix-tuning": 1e-3, "p-tuning": 1e-3,
    "p-tuning-v2": 1e-2, "prompt-tuning": 3e-2,
}
DEFAULT_LR = 2e-4  # the LoRA family
ORDER = ["full", "freeze", "embeddings-only", "bitfit", "lora", "rslora", "dora", "pissa", "olora",
         "loraplus", "qlora", "adalora", "ia3", "prefix-tuning", "p-tuning", "p-tuning-v2",
         "prompt-tuning", "bottleneck", "galore"]
START, END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"


def shared_dataset() -> Path:
    for parent in ROOT.parents:
        path = parent / "shared" / "datasets" / DATASET
        if path.is_file():
            return path
    sys.exit(f"dataset not found: ../shared/datasets/{DATASET}")


def write_data(workdir: Path, train_rows: int, eval_rows: int) -> tuple[Path, Path]:
    rows = json.loads(shared_dataset().read_text(encoding="utf-8"))
    workdir.mkdir(parents=True, exist_ok=True)
    train, evaluation = workdir / "train.json", workdir / "eval.json"
    train.write_text(json.dumps(rows[:200][:train_rows], ensure_ascii=False), encoding="utf-8")
    evaluation.write_text(json.dumps(rows[200:250][:eval_rows], ensure_ascii=False), encoding="utf-8")
    return train, evaluation


def run_one(name: str, args) -> dict:
    """Train one method in this process and measure it."""
    from transformers import TrainerCallback

    from tunesmith.config import validate_config
    from tunesmith.training.runner import train

    class Tokens(TrainerCallback):
        def on_train_end(self, a, state, control, **kwargs):
            self.seen = int(state.num_input_tokens_seen)

    workdir = Path(args.workdir)
    config = validate_config({
        "model": {"name_or_path": args.model},
        "data": {"train": [str(workdir / "train.json")], "eval": [str(workdir / "eval.json")],
                 "format": "alpaca", "cutoff_len": args.cutoff},
        "method": {"name": name},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size,
                  "learning_rate": LEARNING_RATES.get(name, DEFAULT_LR), "logging_steps": 2,
                  "save_steps": 100000, "precision": args.precision, "seed": 0,
                  "threads": args.threads},
        "eval": {"batch_size": 8, "steps": 100000},  # evaluate only before and after training
        "output": {"dir": str(workdir / "runs" / name), "overwrite": True},
    })
    tokens = Tokens()
    start = time.perf_counter()
    result = train(config, callbacks=(tokens,))
    wall = time.perf_counter() - start
    events = [json.loads(line) for line in (result.run_dir / "events.jsonl").read_text().splitlines()]
    setup = next(e for e in events if e["event"] == "setup")
    runtime = result.train_metrics["train_runtime"]
    shutil.rmtree(result.run_dir)  # full-model runs are ~0.5 GB each; only the numbers are kept
    return {
        "method": name, "lr": config.train.learning_rate, "trainable": setup["trainable"],
        "total": setup["total"], "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tokens": tokens.seen, "tokens_per_s": tokens.seen / runtime, "train_s": runtime,
        "eval_before": result.eval_before["eval_loss"], "eval_after": result.eval_after["eval_loss"],
        "wall_s": wall,
    }


def table(rows: list[dict]) -> str:
    head = ("| method | lr | trainable params | share | peak RSS (MB) | train tokens | tokens/s "
            "| eval loss before | eval loss after | train time (s) | wall time (s) |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = []
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['method']} | | | | | | | | | | {r['error']} |")
            continue
        lines.append(
            f"| {r['method']} | {r['lr']:g} | {r['trainable']:,} | {100 * r['trainable'] / r['total']:.3f}% "
            f"| {r['peak_rss_mb']:,.0f} | {r['tokens']:,} | {r['tokens_per_s']:.0f} | {r['eval_before']:.4f} "
            f"| {r['eval_after']:.4f} | {r['train_s']:.1f} | {r['wall_s']:.1f} |")
    return head + "\n".join(lines) + "\n"


def write_doc(doc: Path, rows: list[dict], args, total_s: float) -> None:
    command = " ".join(["nice -n 10", "python", "benchmarks/methods.py"] + args.argv)
    load = os.getloadavg()[1]  # 5-minute load: how much else shared the CPU
    body = (f"{START}\n_Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on a "
            f"{os.cpu_count()}-core CPU machine (5-minute load average {load:.1f} at the last method); "
            f"{args.model}, first {args.train_rows} of the first 200 alpaca_en_demo rows, "
            f"cutoff {args.cutoff}, {args.epochs:g} epoch, batch {args.batch_size}, precision "
            f"{args.precision}, {args.threads or 'all'} thread(s); eval on the first {args.eval_rows} of rows 200-249. "
            f"Total {total_s / 60:.1f} min for {len(rows)} methods._\n\n"
            f"Reproduce: `{command}`\n\n{table(rows)}{END}")
    text = doc.read_text(encoding="utf-8") if doc.is_file() else f"# Methods\n\n{START}\n{END}\n"
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    doc.write_text(before + body + after, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="*", help="default: every registered method available here")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--train-rows", type=int, default=200)
    parser.add_argument("--eval-rows", type=int, default=50)
    parser.add_argument("--cutoff", type=int, default=512)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per method")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--doc", default=str(ROOT / "docs" / "methods.md"))
    parser.add_argument("--workdir")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one method, print JSON
    args = parser.parse_args()
    args.argv = _without_option(sys.argv[1:], "--workdir")
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one, args)))
        return
    from tunesmith.methods import METHODS
    from tunesmith.utils.progress import make_progress

    names = args.methods or sorted(METHODS.names(), key=lambda n: (ORDER.index(n) if n in ORDER else 99, n))
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="tunesmith-bench-")
    write_data(Path(args.workdir), args.train_rows, args.eval_rows)
    rows, start = [], time.perf_counter()
    progress = make_progress("methods")
    task = progress.add_task("methods", total=len(names), info="")
    with progress:
        for name in names:
            progress.update(task, info=name)
            rows.append(_child(name, args))
            progress.update(task, advance=1)
            write_doc(Path(args.doc), rows, args, time.perf_counter() - start)  # keep partial results
    print(table(rows))


def _without_option(argv: list[str], option: str) -> list[str]:
    """argv without `option VALUE` / `option=VALUE` (the reproduce line should not name a temp dir)."""
    out, skip = [], False
    for a in argv:
        if skip or a.startswith(option + "="):
            skip = False
            continue
        if a == option:
            skip = True
            continue
        out.append(a)
    return out


def _child(name: str, args) -> dict:
    spec_check = [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                  "from tunesmith.methods import METHODS; m = METHODS.get(sys.argv[2]); "
                  "print((m.unavailable() if m.unavailable else None) or '')", str(ROOT / "src"), name]
    reason = subprocess.run(spec_check, capture_output=True, text=True).stdout.strip()
    if reason:
        return {"method": name, "error": f"not run: {reason.split(';')[0]}"}
    cmd = [sys.executable, __file__, "--one", name, "--workdir", args.workdir, "--model", args.model,
           "--cutoff", str(args.cutoff), "--epochs", str(args.epochs), "--batch-size",
           str(args.batch_size), "--precision", args.precision] + (["--threads", str(args.threads)] if args.threads else [])
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"method": name, "error": f"timed out after {args.timeout:.0f} s"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"method": name, "error": f"failed: {(done.stderr.strip().splitlines() or ['?'])[-1][:120]}"}


if __name__ == "__main__":
    main()
