"""Human rating kit: blind, shuffled outputs to rate 1-5, and the filled sheets aggregated.

export: items (one per row x model) get random ids, the model behind each id goes to a key file
the raters never see. import: every filled CSV is checked cell by cell, then means per model and
criterion, and agreement between raters (Krippendorff's alpha, interval, and mean pairwise
quadratic-weighted Cohen's kappa from scikit-learn).
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from tunesmith.errors import DataError
from tunesmith.utils.io import atomic_path, read_jsonl, write_json, write_text

CRITERIA = ("relevance", "fluency", "domain_correctness")
COLUMNS = ("item", "prompt", "reference", "output", *CRITERIA, "comment")
KEY_FILE = "rating_key.json"


def find_predictions(source: str) -> dict[str, Path]:
    """label -> predictions file, from a predictions.jsonl or an eval/compare report folder."""
    path = Path(source)
    if path.is_file():
        return {path.parent.name if path.name == "predictions.jsonl" else path.stem: path}
    if (path / "predictions.jsonl").is_file():
        return {path.parent.name if path.name == "eval" else path.name: path / "predictions.jsonl"}
    found = sorted((path / "predictions").glob("*.jsonl"))
    if not found:
        raise DataError(f"{source}: no predictions.jsonl or predictions/*.jsonl; run `tunesmith eval` or `compare` first")
    return {p.stem: p for p in found}


def export_rating(sources: list[str], out_dir: Path, seed: int = 0, max_rows: int | None = None,
                  with_reference: bool = True) -> dict:
    systems: dict[str, Path] = {}
    for source in sources:
        systems.update(find_predictions(source))
    items = []
    for system, path in systems.items():
        for row in read_jsonl(path)[:max_rows]:
            if "prediction" not in row:
                raise DataError(f"{path}: rows have no prediction (was it a scoring-only eval?); evaluate "
                                "with a generation metric such as rouge")
            items.append({"system": system, "origin": row["origin"], "prompt": row["prompt"],
                          "reference": row.get("reference") or "", "output": row["prediction"]})
    if not items:
        raise DataError("nothing to rate: the predictions files are empty")
    rng = random.Random(seed)
    rng.shuffle(items)
    ids = rng.sample(range(1000, 1000 + 10 * len(items)), len(items))
    key = {}
    for item, number in zip(items, ids):
        item["item"] = f"R{number}"
        key[item["item"]] = {"system": item.pop("system"), "origin": item["origin"]}
        if not with_reference:
            item["reference"] = ""
    _write_csv(out_dir / "rating_form.csv", items)
    write_text(out_dir / "rating_form.html", _form_html(items))
    write_json(out_dir / KEY_FILE, {"systems": sorted(systems), "criteria": list(CRITERIA), "items": key})
    return {"items": len(items), "systems": sorted(systems), "dir": str(out_dir)}


def _write_csv(path: Path, items: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8-sig") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(items)


def _form_html(items: list[dict]) -> str:
    from tunesmith.evaluation.report_html import esc

    radios = lambda item, c: "".join(
        f'<label><input type="radio" name="{esc(item["item"])}.{c}" value="{v}">{v}</label> ' for v in range(1, 6))
    blocks = "".join(
        f'<section data-item="{esc(i["item"])}"><h3>{esc(i["item"])}</h3>'
        f'<p><b>Prompt</b></p><div class="t">{esc(i["prompt"])}</div>'
        + (f'<p><b>Reference</b></p><div class="t">{esc(i["reference"])}</div>' if i["reference"] else "")
        + f'<p><b>Output</b></p><div class="t out">{esc(i["output"])}</div>'
        + "".join(f"<p>{c.replace('_', ' ')}: {radios(i, c)}</p>" for c in CRITERIA)
        + f'<p>comment: <input type="text" name="{esc(i["item"])}.comment" size="60"></p></section>'
        for i in items)
    return _FORM.replace("{blocks}", blocks).replace("{criteria}", json.dumps(list(CRITERIA)))


_FORM = """<!doctype html><html><head><meta charset="utf-8"><title>tunesmith rating form</title><style>
body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;max-width:900px;margin:2em auto;padding:0 1em}
section{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;margin:1em 0}.t{white-space:pre-wrap;background:#f7f7f7;
padding:.5em}.out{background:#eef5ff}label{margin-right:.6em}</style></head><body>
<h1>Rate the outputs</h1><p>Outputs come from several systems in random order; you are not told which.
Score each 1 (bad) to 5 (excellent): <b>relevance</b> (answers the prompt), <b>fluency</b> (clear, natural
language), <b>domain correctness</b> (facts and terms right for the field). Then download your CSV and send it back.</p>
<p>Your name: <input id="rater" type="text"></p>{blocks}
<button onclick="save()">Download my ratings (CSV)</button>
<script>
const criteria = {criteria};
function q(s){return '"' + String(s).replace(/"/g,'""') + '"';}
function save(){
  const rater = document.getElementById('rater').value || 'rater';
  const rows = [['item', ...criteria, 'comment', 'rater'].join(',')];
  document.querySelectorAll('section').forEach(sec => {
    const id = sec.dataset.item;
    const get = c => { const el = sec.querySelector(`input[name="${id}.${c}"]:checked`); return el ? el.value : ''; };
    const comment = sec.querySelector(`input[name="${id}.comment"]`).value;
    rows.push([id, ...criteria.map(get), q(comment), q(rater)].join(','));
  });
  const blob = new Blob([rows.join('\\n') + '\\n'], {type: 'text/csv'});
  const a = document.createElement('a'); a.href = URL.createObjectURL(blob);
  a.download = `ratings_${rater}.csv`; a.click();
}
</script></body></html>"""
