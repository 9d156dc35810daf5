"""int8 exports of SmolLM2-135M-Instruct against fp32 and GGUF q8_0: size, latency, eval loss.

    PYTHONPATH=src python benchmarks/int8_quality.py [--rows 20] [--new-tokens 8] [--formats ...]

Each export is `tunesmith export smollm2-135m-instruct --to ...` (the library call) with the
same eval rows (alpaca_en_demo rows 200..200+rows, the sft benchmark's held-out rows); every
report holds the fp32 model's eval loss and latency measured in the same process, so each
row's delta is against fp32 measured at the same time. Prints a markdown table with the load
average; latency depends on machine load, sizes and losses do not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

FORMATS = {
    "int8 weight-only (fp32 activations)": ("int8", {"int8_mode": "weight-only"}),
    "int8 weight-only (bf16 activations)": ("int8", {"int8_mode": "weight-only", "int8_activations": "bf16"}),
    "int8 dynamic": ("int8", {"int8_mode": "dynamic"}),
    "gguf q8_0": ("gguf", {"quant": "q8_0"}),
}


def main() -> None:
    from sft_throughput import DATA, shared_datasets

    from tunesmith.export.pipeline import run_export

    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=20)
    p.add_argument("--new-tokens", type=int, default=8)
    p.add_argument("--formats", default=",".join(FORMATS), help="comma-separated names from the table")
    a = p.parse_args()
    rows = json.loads((shared_datasets() / DATA).read_text())[200 : 200 + a.rows]
    lines = ["| export | size MB | size vs fp32 | p50 s (fp32 p50 s) | eval loss (fp32) | change |",
             "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "eval.json"
        data.write_text(json.dumps(rows))
        for name in a.formats.split(","):
            kind, options = FORMATS[name]
            r = run_export("smollm2-135m-instruct", kind, str(Path(tmp) / name.replace(" ", "_")),
                           options=options, data=str(data), new_tokens=a.new_tokens)
            q, base = r["quality"], r["baseline"]
            change = q["delta"] / q["source"] if q["delta"] is not None and q["source"] else None
            lines.append(f"| {name} | {r['size_bytes'] / 1e6:,.1f} | {r['size_vs_source']:.2f} | "
                         f"{r['export']['latency_p50_s']:.3f} ({base.get('latency_p50_s', float('nan')):.3f}) | "
                         f"{q['export']:.4f} ({q['source']:.4f}) | {change:+.2%} |")
            print(lines[-1], f"load average {os.getloadavg()[0]:.1f}", flush=True)
    print(f"\n{a.rows} eval rows, {a.new_tokens} new tokens per prompt, load average {os.getloadavg()[0]:.1f}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
