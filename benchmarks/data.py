"""Throughput and peak memory of `tunesmith data` validate, exact dedup and MinHash dedup.

    PYTHONPATH=src python benchmarks/data.py --rows 100000 1000000 [--skip-minhash-above 100000]
    PYTHONPATH=src python benchmarks/data.py --rows 100000 1000000 --ops dedup-minhash   # MinHash only

Synthetic OpenAI-chat rows (English and Chinese mixed, 3% exact and 3% near duplicates
planted) are written to a temp folder; each operation runs in its own process so its peak
RSS is its own. Prints a markdown table for docs/data.md. Not a test.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ["model", "data", "train", "token", "loss", "batch", "learning", "rate", "layer", "weight", "gradient", "adapter", "prompt", "answer", "question", "review", "patient", "record", "contract", "clause", "risk", "market", "price", "report", "summary"]
HANZI = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理"


def make_file(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    previous: list[str] = []
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            roll = rng.random()
            if previous and roll < 0.03:
                text = rng.choice(previous)  # exact duplicate
            elif previous and roll < 0.06:
                words = rng.choice(previous).split(" ")
                words[rng.randrange(len(words))] = rng.choice(WORDS)  # near duplicate
                text = " ".join(words)
            elif i % 4 == 0:
                text = "".join(rng.choice(HANZI) for _ in range(rng.randint(20, 80)))
            else:
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 60)))
            if len(previous) < 5000:
                previous.append(text)
            elif rng.random() < 0.01:
                previous[rng.randrange(5000)] = text
            row = {"messages": [{"role": "user", "content": text},
                                {"role": "assistant", "content": f"answer {len(text) % 97}"}]}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def one(op: str, path: str, out: str) -> dict:
    """Run one operation in this process and return its figures."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from tunesmith.data.tools import apply_step
    from tunesmith.data.validate import validate_file

    start = time.perf_counter()  # after imports: rows/s is the work, not Python start-up
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime
    if op == "validate":
        result = validate_file(path)
        detail = {"errors": len(result.errors)}
    else:
        report = apply_step([path], {"step": "dedup", "method": op.removeprefix("dedup-")}, out)
        detail = {"removed": report.rows_in - report.rows_out}
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_start  # the machine may be shared: CPU time too
    return {"seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), **detail}  # ru_maxrss is KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--skip-minhash-above", type=int, default=10**9)
    parser.add_argument("--ops", default="validate,dedup-exact,dedup-minhash",
                        help="operations to run, e.g. dedup-minhash alone")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*args.one)))
        return
    lines = ["| rows | operation | wall s | CPU s | rows/s (wall) | rows/s (CPU) | peak RSS (MB) | result |",
             "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            path = Path(tmp) / f"synthetic_{rows}.jsonl"
            make_file(path, rows)
            ops = [op for op in args.ops.split(",") if op != "dedup-minhash" or rows <= args.skip_minhash_above]
            for op in ops:
                done = subprocess.run([sys.executable, __file__, "--one", op, str(path), str(Path(tmp) / "out.jsonl")],
                                      capture_output=True, text=True, check=True)
                r = json.loads(done.stdout.strip().splitlines()[-1])
                extra = f"{r['errors']} errors" if "errors" in r else f"{r['removed']} removed"
                lines.append(f"| {rows:,} | {op} | {r['seconds']} | {r['cpu_seconds']} | {rows / r['seconds']:,.0f} | "
                             f"{rows / max(r['cpu_seconds'], 0.1):,.0f} | {r['peak_rss_mb']} | {extra} |")
                print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
