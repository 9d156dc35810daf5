"""Markdown + JSON report for benchmarks/sft_throughput.py."""

from __future__ import annotations

import json
from pathlib import Path


def _fmt(value, digits=1):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def _ratios(by_leg: dict) -> list[str]:
    lines = []
    for leg, tool in (("c", "tunesmith"), ("e", "tunesmith with train.torch_compile")):
        lines += _ratios_of(by_leg, by_leg.get(leg), tool)
    return lines


def _ratios_of(by_leg: dict, c: dict | None, tool: str) -> list[str]:
    lines = []
    for other, name in (("b", "LLaMA-Factory"), ("a", "the plain-Trainer baseline")):
        if c and other in by_leg:
            o = by_leg[other]
            ratio = c["real_tokens_per_s"] / o["real_tokens_per_s"]
            steady = (c["steady_real_tokens_per_s"] / o["steady_real_tokens_per_s"]
                      if c["steady_real_tokens_per_s"] and o["steady_real_tokens_per_s"] else None)
            per_cpu = c["real_tokens_per_cpu_s"] / o["real_tokens_per_cpu_s"]
            lines.append(f"- {tool} / {name}: **{ratio:.2f}x** real tokens/s "
                         f"({_fmt(steady, 2)}x without the first step; {per_cpu:.2f}x real tokens per CPU-second)")
            if other == "b":
                if c["eval_loss"] is not None and o["eval_loss"] is not None:
                    gap = (c["eval_loss"] - o["eval_loss"]) / o["eval_loss"]
                    lines.append(f"- eval loss as each tool reports it, {tool} vs LLaMA-Factory: "
                                 f"{c['eval_loss']:.4f} vs {o['eval_loss']:.4f} ({gap:+.2%})")
                same_c, same_o = c.get("eval_loss_same_evaluator"), o.get("eval_loss_same_evaluator")
                if same_c is not None and same_o is not None:
                    lines.append(f"- eval loss of both adapters by the same evaluator (benchmarks/_cross_eval.py): "
                                 f"{same_c:.5f} vs {same_o:.5f} ({(same_c - same_o) / same_o:+.3%})")
                lines.append(f"- peak RSS, {tool} vs LLaMA-Factory: {c['peak_rss_mb']:,.0f} MB vs "
                             f"{o['peak_rss_mb']:,.0f} MB ({c['peak_rss_mb'] / o['peak_rss_mb']:.2f}x)")
    return lines


def _peak_lines(results: list[dict], machine: dict) -> list[str]:
    peak = machine.get("matmul_peak")
    if not peak:
        return []
    lines = [f"- matmul peak at the model's shapes ({peak['tokens']} rows; {peak['threads']} threads; best of "
             f"{peak['measured']} measurements, before and after the legs): fp32 "
             f"{peak['fp32']['peak_gflops']:,.1f} GFLOP/s, bf16 {peak['bf16']['peak_gflops']:,.1f} GFLOP/s; "
             f"N = {peak['params'] / 1e6:.1f}M parameters"]
    for r in results:
        s = r.get("share_of_peak")
        if s:
            lines.append(f"- ({r['leg']}) share of peak ({s['flops_per_token'] / peak['params']:.0f}N FLOPs per "
                         f"token, {s['achieved_gflops']:,.1f} GFLOP/s): {s['fp32']:.1%} of fp32, "
                         f"{s['bf16']:.1%} of bf16")
    return lines


def _reuse_note(machine: dict) -> str:
    reused = machine.get("reused")
    if not reused:
        return ""
    return (f"\nLegs {', '.join(reused['legs'])} were not run again: their rows are from the run finished "
            f"{reused['measured']} (same command without --reuse), and only the other legs were measured now.")


def _sharing(machine: dict) -> str:
    """A load average near the cores the legs use means nothing else ran; far above, the machine was shared."""
    if machine["load_average_before"][0] <= 1.0:  # the last minute: longer averages remember earlier work
        return "idle before the run (the legs' own threads are the load after)"
    return "**shared with other work during the run**"


def write_report(out: Path, results: list[dict], machine: dict, command: str, options: dict) -> None:
    by_leg = {r["leg"]: r for r in results}
    header = ("| leg | real tokens/s | without 1st step | real tokens / CPU-s | padding processed | "
              "peak RSS MB | train loop s | process wall s | steps | first loss | final loss | "
              "mean train loss | eval loss (own) | eval loss (same evaluator) |")
    rows = [header, "|" + "---|" * 14]
    for r in results:
        rows.append(
            f"| ({r['leg']}) {r['what']} | {_fmt(r['real_tokens_per_s'])} | "
            f"{_fmt(r['steady_real_tokens_per_s'])} | {_fmt(r['real_tokens_per_cpu_s'])} | {r['padding_share']:.1%} | {_fmt(r['peak_rss_mb'], 0)} | "
            f"{_fmt(r['train_loop_seconds'])} | {_fmt(r['wall_seconds'])} | {r['optimizer_steps']} | "
            f"{_fmt(r['first_loss'], 4)} | {_fmt(r['final_loss'], 4)} | {_fmt(r['mean_train_loss'], 4)} | "
            f"{_fmt(r['eval_loss'], 4)} | {_fmt(r.get('eval_loss_same_evaluator'), 4)} |"
        )
    load = ", ".join(f"{x:.1f}" for x in machine["load_average_before"])
    load_after = ", ".join(f"{x:.1f}" for x in machine["load_average_after"])
    text = f"""## Measured {machine['finished']}

Command (from the repository root): `{command}`

Machine: {machine['cpu']}, {machine['cores']} cores, {_sharing(machine)}
(load average {load} before, {load_after} after). Each leg ran alone in its own process,
one after another ({options['legs']}); optimizer steps of 8 examples per leg as in the table;
torch threads per leg: {options.get('threads') or 'all cores'}.{_reuse_note(machine)}

{chr(10).join(rows)}

{chr(10).join(_ratios(by_leg) + _peak_lines(results, machine))}

```json
{json.dumps({"machine": machine, "options": options, "results": results}, indent=1)}
```
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = out.read_text() if out.exists() else ""
    marker = "<!-- results -->"
    if marker in previous:
        text = previous.split(marker)[0] + marker + "\n\n" + text
    else:
        text = f"# Benchmarks\n\nSee docs/performance.md for what makes tunesmith fast.\n\n{marker}\n\n{text}"
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"machine": machine, "options": options, "results": results},
                                                   indent=1))
