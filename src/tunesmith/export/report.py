"""exports.md: one row per export of a run, so formats can be compared at a glance."""

from __future__ import annotations

from pathlib import Path

from tunesmith.utils.io import save_png, write_text

HEADER = (
    "# Exports\n\n"
    "Measured by `tunesmith export` on this machine (CPU, batch 1, greedy; see each folder's "
    "export_report.json). Δ loss is the export's eval loss minus the unexported model's.\n\n"
    "| created | format | options | folder | size MB | size vs fp32 | load s | p50 s | p95 s "
    "| tok/s | eval loss | Δ loss | max logit diff | greedy same |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)


def _num(value, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def exports_row(report: dict) -> str:
    options = ", ".join(f"{k}={v}" for k, v in report["options"].items()) or "-"
    e, q, p = report["export"], report["quality"], report["parity"]
    cells = [
        report["created"], report["format"], options, report["output"],
        _num(report["size_bytes"] / 1e6, ".1f"), _num(report["size_vs_source"], ".2f"),
        _num(e["load_s"], ".2f"), _num(e["latency_p50_s"], ".3f"), _num(e["latency_p95_s"], ".3f"),
        _num(e["tokens_per_s"], ".1f"), _num(q["export"], ".4f"), _num(q["delta"], "+.4f"),
        _num(p["max_abs_logit_diff"], ".2e"), f"{p['greedy_equal_prompts']}/{p['prompts']}",
    ]
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |\n"


def append_exports_row(folder: Path, report: dict) -> Path:
    """Add a row (and the header, the first time) to folder/exports.md, atomically."""
    path = Path(folder) / "exports.md"
    text = path.read_text(encoding="utf-8") if path.is_file() else HEADER
    write_text(path, text + exports_row(report))
    return path


def plot_exports(folder: Path) -> Path | None:
    """exports.png: size, tokens/s and eval-loss delta of every export in folder/exports/."""
    import json

    reports = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(Path(folder).glob("exports/*/export_report.json"))]
    if not reports:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    labels = [Path(r["output"]).name for r in reports]
    panels = [("size (MB)", [r["size_bytes"] / 1e6 for r in reports]),
              ("tokens/s (greedy, batch 1)", [r["export"]["tokens_per_s"] for r in reports]),
              ("eval loss delta", [r["quality"]["delta"] or 0.0 for r in reports])]
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.5 * len(reports) + 2), sharey=True)
    for ax, (title, values) in zip(axes, panels):
        ax.barh(labels, values)
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    out = Path(folder) / "exports.png"
    save_png(fig, out, dpi=100)
    return out
