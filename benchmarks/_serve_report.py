"""Markdown + JSON report for benchmarks/serve_load.py: the measured part of docs/serving.md's
"Benchmark" section, between the serve-load markers (the prose around them is kept)."""

from __future__ import annotations

import json
from pathlib import Path

START, END = "<!-- serve-load:start -->", "<!-- serve-load:end -->"
PREDICT_LEGS = ("p", "q")  # classification behind /v1/predict: the run itself, its ONNX export


def previous_results(json_path: Path, legs: str) -> dict:
    """The rows of `legs` from the last report, marked as reused."""
    if not legs:
        return {}
    report = json.loads(json_path.read_text())
    out = {}
    for leg in legs.split(","):
        if leg not in report["results"]:
            raise SystemExit(f"--reuse {legs}: {json_path} has no leg {leg}")
        out[leg] = {**report["results"][leg], "reused_from": report["machine"]["finished"]}
    return out


def _ms(seconds) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f}"


def _num(value, digits=1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _cell(entry: dict, clients: int) -> dict | None:
    return next((c for c in entry.get("cells", []) if c["clients"] == clients), None)


def generation_table(results: dict) -> list[str]:
    rows = ["| leg | clients | requests | errors | cut | output tokens/s | requests/s | TTFT p50 ms | TTFT p95 ms | "
            "latency p50 ms | latency p95 ms | prompt tokens (mean) | output tokens (mean) |",
            "|" + "---|" * 13]
    for leg, entry in results.items():
        if leg in PREDICT_LEGS or "cells" not in entry:
            continue
        for c in entry["cells"]:
            rows.append(f"| ({leg}) {entry['what']} | {c['clients']} | {c['requests']} | {c['errors']} | "
                        f"{c.get('cut', 0)} | {_num(c['tokens_per_s'])} | {_num(c['requests_per_s'], 2)} | "
                        f"{_ms(c['ttft_p50'])} | {_ms(c['ttft_p95'])} | {_ms(c['latency_p50'])} | "
                        f"{_ms(c['latency_p95'])} | {_num(c['mean_prompt_tokens'], 0)} | "
                        f"{_num(c['mean_output_tokens'], 0)} |")
    return rows


def probe_table(results: dict) -> list[str]:
    rows = ["| leg | TTFT p50 ms, 50-token prompt, 1 client | TTFT p95 ms | server start s |", "|---|---|---|---|"]
    for leg, entry in results.items():
        probe = entry.get("probe_50_tokens")
        if probe:
            rows.append(f"| ({leg}) | {_ms(probe['ttft_p50'])} | {_ms(probe['ttft_p95'])} | "
                        f"{_num(entry.get('startup_seconds'))} |")
    return rows


def predict_table(results: dict) -> list[str]:
    entries = {leg: results[leg] for leg in PREDICT_LEGS if "cells" in results.get(leg, {})}
    if not entries:
        return []
    rows = ["| leg | clients | requests | errors | requests/s | latency p50 ms | latency p95 ms |",
            "|---|---|---|---|---|---|---|"]
    for leg, entry in entries.items():
        for c in entry["cells"]:
            rows.append(f"| ({leg}) {entry['what']} | {c['clients']} | {c['requests']} | {c['errors']} | "
                        f"{_num(c['requests_per_s'])} | {_ms(c['latency_p50'])} | {_ms(c['latency_p95'])} |")
    return rows


def targets(results: dict) -> list[str]:
    """The issue's targets, each with the measured figures and met / missed."""
    def tps(leg, clients=16):
        cell = _cell(results.get(leg, {}), clients)
        return cell["tokens_per_s"] if cell and cell["tokens_per_s"] else None

    lines = []

    def check(name: str, value, ok) -> None:
        verdict = "not measured" if value is None else ("met" if ok else "**missed**")
        lines.append(f"- {name}: {value if value is not None else '-'} ({verdict})")

    d, a, b, c, e = tps("d"), tps("a"), tps("b"), tps("c"), tps("e")
    check("(d) / (a) output tokens/s at 16 clients >= 4", None if not (d and a) else f"{d / a:.2f}x",
          bool(d and a and d / a >= 4))
    check("(d) / (b) at 16 clients >= 1", None if not (d and b) else f"{d / b:.2f}x", bool(d and b and d >= b))
    check("(e) / (d) at 16 clients >= 0.8", None if not (d and e) else f"{e / d:.2f}", bool(d and e and e / d >= 0.8))
    probe = results.get("d", {}).get("probe_50_tokens")
    ttft = probe["ttft_p50"] if probe else None
    check("(d) TTFT p50, 1 client, 50-token prompt <= 100 ms", None if ttft is None else f"{ttft * 1000:.0f} ms",
          ttft is not None and ttft <= 0.1)
    cells = {leg: _cell(results.get(leg, {}), 16) for leg in PREDICT_LEGS}
    cells = {leg: cell for leg, cell in cells.items() if cell}
    best = max(cells, key=lambda leg: cells[leg]["requests_per_s"], default=None)
    cls = cells.get(best)
    check("classification at 16 clients >= 50 requests/s", None if not cls else
          f"{cls['requests_per_s']:.1f}/s ({best})", bool(cls and cls["requests_per_s"] >= 50))
    check("classification p95 at 16 clients <= 100 ms", None if not cls else f"{_ms(cls['latency_p95'])} ms ({best})",
          bool(cls and cls["latency_p95"] is not None and cls["latency_p95"] <= 0.1))
    errors = sum(c["errors"] for leg in ("d", "e", *PREDICT_LEGS) for c in results.get(leg, {}).get("cells", []))
    check("errors in (d), (e), (p), (q)", errors, errors == 0)
    if c and d:
        lines.append(f"- (d) / (c) llama.cpp at 16 clients: {d / c:.2f}x (no target)")
    return lines


def write_report(md: Path, json_path: Path, results: dict, machine: dict, options: dict, command: str) -> None:
    load = ", ".join(f"{x:.1f}" for x in machine["load_average_before"])
    after = ", ".join(f"{x:.1f}" for x in machine["load_average_after"])
    shared = "idle before the run" if machine["load_average_before"][0] <= 1.0 else \
        "**shared with other work during the run** (figures depressed; to be re-measured on an idle machine)"
    not_run = [f"- ({leg}) {entry['what']}: not run: {entry['not_run'].strip().splitlines()[-1][:400]}"
               for leg, entry in results.items() if "not_run" in entry]
    reused = [f"- ({leg}) is reused from the run finished {entry['reused_from']}" for leg, entry in results.items()
              if "reused_from" in entry]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    text = f"""{START}

### Measured {machine['finished']} ({options['mode']} mode)

Command (from the repository root): `{command}`. Machine: {machine['cpu']}, {machine['cores']} cores
(bf16 instructions: {'yes' if machine['bf16'] else 'no'}), {shared}; load average {load} before, {after} after.
{versions}. {options['seconds']:.0f} s per cell (at most {options['cap_per_client']} requests per client), then up to
{options['grace']:.0f} s for the requests in flight (those still running are cut; their streamed tokens count in
tokens/s); {options['max_tokens']} output tokens at most, greedy, streamed. The whole run took
{machine['wall_seconds']:.0f} s.

{chr(10).join(generation_table(results))}

{chr(10).join(probe_table(results))}

{chr(10).join(predict_table(results))}

Targets:

{chr(10).join(targets(results))}
{chr(10).join(not_run + reused)}

{END}"""
    previous = md.read_text() if md.exists() else ""
    if START in previous and END in previous:
        text = previous.split(START)[0] + text + previous.split(END, 1)[1]
    else:
        text = previous.rstrip() + "\n\n## Benchmark\n\n" + text + "\n"
    md.write_text(text)
    json_path.write_text(json.dumps({"machine": machine, "options": options, "command": command,
                                     "results": results}, indent=1) + "\n")
