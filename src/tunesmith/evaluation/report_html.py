"""report.json -> a self-contained report.html (charts are PNG files beside it)."""

from __future__ import annotations

import html
from pathlib import Path

from tunesmith.utils.io import write_json, write_text

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{border:1px solid #ccc;padding:.35em .6em;
vertical-align:top;text-align:left}th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.best{font-weight:bold;background:#e8f5e9}.worse{background:#fdecea}.muted{color:#777;font-size:.9em}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}.pred{white-space:pre-wrap;max-width:28em}
.meta td{border:none;padding:.1em .8em .1em 0}
"""


def esc(value) -> str:
    return html.escape(str(value))


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.3e}"
    return esc(value)


def scores_table(scores: dict[str, dict[str, float]], directions: dict[str, str]) -> str:
    """Rows: score keys; columns: models; the best model per row is highlighted."""
    models = list(scores)
    keys = list(dict.fromkeys(k for s in scores.values() for k in s))
    head = "".join(f"<th>{esc(m)}</th>" for m in models)
    lines = [f"<table><tr><th>score</th><th>better</th>{head}</tr>"]
    for key in keys:
        values = {m: scores[m].get(key) for m in models}
        present = [v for v in values.values() if v is not None]
        direction = directions.get(key, "higher")
        best = (max if direction == "higher" else min)(present) if len(set(present)) > 1 else None
        cells = "".join(
            f'<td class="num{" best" if best is not None and v == best else ""}">{fmt(v) if v is not None else "–"}</td>'
            for v in values.values()
        )
        lines.append(f"<tr><td>{esc(key)}</td><td>{esc(direction)}</td>{cells}</tr>")
    return "\n".join(lines) + "</table>"


def charts_html(charts: list[dict]) -> str:
    return "\n".join(
        f'<figure><img src="{esc(c["path"])}" alt="{esc(c["title"])}"><figcaption class="muted">{esc(c["title"])}'
        "</figcaption></figure>" for c in charts
    )


ROW_KEYS_SHOWN = 5  # per-row score lines stay short; predictions.jsonl has them all


def examples_table(examples: list[dict], models: list[str], keys: list[str]) -> str:
    keys = [k for k in keys if k not in ("loss", "bleu_brevity_penalty")][:ROW_KEYS_SHOWN]
    if not examples:
        return '<p class="muted">No rows to show.</p>'
    head = "".join(f"<th>{esc(m)}</th>" for m in models)
    lines = [f"<table><tr><th>row</th><th>prompt</th><th>reference</th>{head}</tr>"]
    for ex in examples:
        cells = []
        for m in models:
            scores = ex.get("scores", {}).get(m, {})
            shown = " · ".join(f"{k} {fmt(scores[k])}" for k in keys if k in scores)
            note = ex.get("notes", {}).get(m)
            extra = f'<div class="muted">{esc(shown)}</div>' if shown else ""
            extra += f'<div class="muted">{esc(note)}</div>' if note else ""
            cells.append(f'<td class="pred">{esc(ex.get("predictions", {}).get(m, ""))}{extra}</td>')
        lines.append(f'<tr><td class="muted">{esc(ex["origin"])}</td><td class="pred">{esc(ex["prompt"])}</td>'
                     f'<td class="pred">{esc(ex.get("reference") or "")}</td>{"".join(cells)}</tr>')
    return "\n".join(lines) + "</table>"


def render(report: dict) -> str:
    models = report["models"]
    directions = report.get("directions", {})
    keys = list(dict.fromkeys(k for s in report["scores"].values() for k in s))
    meta = "".join(f"<tr><td class='muted'>{esc(k)}</td><td>{esc(v)}</td></tr>"
                   for k, v in report.get("meta", {}).items())
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(report['title'])}</title>"
             f"<style>{_CSS}</style></head><body><h1>{esc(report['title'])}</h1>",
             f"<table class='meta'>{meta}</table>",
             "<h2>Scores</h2>", scores_table(report["scores"], directions),
             charts_html(report.get("charts", []))]
    for section in report.get("sections", []):
        parts += [f"<h2>{esc(section['title'])}</h2>", section.get("intro_html", ""),
                  scores_table(section["scores"], {**directions, **section.get("directions", {})})
                  if section.get("scores") else "",
                  charts_html(section.get("charts", []))]
    parts += [f"<h2>{esc(report.get('examples_title', 'Examples'))}</h2>",
              f"<p class='muted'>{esc(report.get('examples_note', ''))}</p>",
              examples_table(report.get("examples", []), models, keys), "</body></html>"]
    return "\n".join(parts)


def write_report(report: dict, out_dir: Path) -> Path:
    write_json(out_dir / "report.json", report)
    write_text(out_dir / "report.html", render(report))
    return out_dir / "report.html"
