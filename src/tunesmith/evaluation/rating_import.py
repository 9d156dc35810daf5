"""Filled rating sheets -> means per model and criterion, and agreement between raters."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

from tunesmith.errors import DataError
from tunesmith.evaluation import charts
from tunesmith.evaluation.rating import KEY_FILE
from tunesmith.evaluation.report_html import esc, fmt, render
from tunesmith.utils.io import write_json, write_text


def read_sheet(path: Path, key: dict, criteria: list[str]) -> tuple[str, dict[str, dict[str, int]]]:
    """(rater, {item: {criterion: score}}); a bad cell raises DataError naming file, line and column."""
    ratings: dict[str, dict[str, int]] = {}
    rater = path.stem
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("item", *criteria) if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}; fill the exported rating_form.csv")
        for line, row in enumerate(reader, start=2):
            item = (row.get("item") or "").strip()
            if item not in key:
                raise DataError(f"{path}:{line}: item {item!r} is not in this kit's {KEY_FILE}")
            rater = (row.get("rater") or "").strip() or rater
            ratings[item] = {c: _score(path, line, c, row.get(c)) for c in criteria if (row.get(c) or "").strip()}
    return rater, ratings


def _score(path: Path, line: int, column: str, cell) -> int:
    try:
        value = int(str(cell).strip())
    except ValueError:
        value = 0
    if not 1 <= value <= 5:
        raise DataError(f"{path}:{line}: column {column} is {cell!r}; scores are whole numbers 1-5 (or empty)")
    return value


def krippendorff_alpha_interval(units: list[list[float]]) -> float | None:
    """Krippendorff's alpha, interval metric, over units rated by >= 2 raters (missing allowed).
    Written out because it is a dozen lines and scikit-learn has only pairwise kappa."""
    units = [u for u in units if len(u) >= 2]
    pooled = [v for u in units for v in u]
    n = len(pooled)
    if n < 2:
        return None
    observed = sum(sum((a - b) ** 2 for a, b in itertools.permutations(u, 2)) / (len(u) - 1) for u in units) / n
    expected = sum((a - b) ** 2 for a, b in itertools.permutations(pooled, 2)) / (n * (n - 1))
    if expected == 0:
        return 1.0 if observed == 0 else None
    return 1 - observed / expected


def pairwise_kappa(by_rater: dict[str, dict[str, int]]) -> float | None:
    """Mean quadratic-weighted Cohen's kappa over rater pairs, on the items both rated."""
    from sklearn.metrics import cohen_kappa_score

    values = []
    for a, b in itertools.combinations(sorted(by_rater), 2):
        common = sorted(set(by_rater[a]) & set(by_rater[b]))
        if len(common) < 2:
            continue
        x, y = [by_rater[a][i] for i in common], [by_rater[b][i] for i in common]
        if len(set(x) | set(y)) == 1:
            values.append(1.0)  # identical constant ratings: perfect agreement, kappa undefined
            continue
        values.append(float(cohen_kappa_score(x, y, weights="quadratic", labels=[1, 2, 3, 4, 5])))
    return sum(values) / len(values) if values else None


def aggregate(kit_dir: Path, sheets: list[Path]) -> dict:
    key_path = kit_dir / KEY_FILE
    if not key_path.is_file():
        raise DataError(f"{kit_dir}: no {KEY_FILE}; give the folder `tunesmith eval export-rating` wrote")
    kit = json.loads(key_path.read_text(encoding="utf-8"))
    key, criteria = kit["items"], kit["criteria"]
    raters: dict[str, dict[str, dict[str, int]]] = {}
    for sheet in sheets:
        rater, ratings = read_sheet(Path(sheet), key, criteria)
        raters[rater if rater not in raters else f"{rater}#{len(raters) + 1}"] = ratings
    means = {s: {} for s in kit["systems"]}
    agreement = {}
    for c in criteria:
        for system in kit["systems"]:
            scores = [r[i][c] for r in raters.values() for i in r if c in r[i] and key[i]["system"] == system]
            if scores:
                means[system][c] = sum(scores) / len(scores)
        units = [[r[i][c] for r in raters.values() if i in r and c in r[i]] for i in key]
        per_rater = {name: {i: v[c] for i, v in r.items() if c in v} for name, r in raters.items()}
        agreement[c] = {"krippendorff_alpha": krippendorff_alpha_interval(units), "cohen_kappa": pairwise_kappa(per_rater)}
    rated = {i for r in raters.values() for i in r}
    return {"raters": sorted(raters), "items": len(key), "items_rated": len(rated), "criteria": criteria,
            "means": means, "agreement": agreement}


def import_rating(kit_dir: Path, sheets: list[Path], report_dir: Path | None = None) -> dict:
    result = aggregate(kit_dir, sheets)
    write_json(kit_dir / "rating_report.json", result)
    target = report_dir or kit_dir
    png = charts.score_panels(result["means"], result["criteria"], target / "charts" / "human_rating.png",
                              "mean human rating (1-5)")
    section = _section(result, bool(png))
    if report_dir is not None:
        report_file = report_dir / "report.json"
        if not report_file.is_file():
            raise DataError(f"--report {report_dir}: no report.json there; give an eval or compare output folder")
        report = json.loads(report_file.read_text(encoding="utf-8"))
        report["sections"] = [s for s in report.get("sections", []) if s.get("id") != "human_rating"] + [section]
        report["human_rating"] = result
        write_json(report_file, report)
        write_text(report_dir / "report.html", render(report))
        result["report_path"] = str(report_dir / "report.html")
    return result


def _section(result: dict, has_chart: bool) -> dict:
    rows = "".join(
        f"<tr><td>{esc(c)}</td><td class='num'>{fmt(a['krippendorff_alpha']) if a['krippendorff_alpha'] is not None else '–'}"
        f"</td><td class='num'>{fmt(a['cohen_kappa']) if a['cohen_kappa'] is not None else '–'}</td></tr>"
        for c, a in result["agreement"].items())
    intro = (f"<p>{len(result['raters'])} raters ({esc(', '.join(result['raters']))}), {result['items_rated']} of "
             f"{result['items']} blind items rated. Agreement (1 = perfect, 0 = chance):</p>"
             f"<table><tr><th>criterion</th><th>Krippendorff α (interval)</th><th>Cohen κ (quadratic, mean of pairs)"
             f"</th></tr>{rows}</table><p>Mean rating per model (1-5):</p>")
    return {"id": "human_rating", "title": "Human rating", "intro_html": intro, "scores": result["means"],
            "charts": [{"title": "Mean human rating", "path": "charts/human_rating.png"}] if has_chart else []}
