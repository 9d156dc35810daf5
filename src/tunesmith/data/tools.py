"""What the `tunesmith data` commands do, as library calls: read files, run a step or a
conversion, write the result and a JSON report atomically. Inputs are never modified."""

from __future__ import annotations

from pathlib import Path

from tunesmith.data.files import read_input, refuse_overwriting_inputs, write_rows
from tunesmith.data.load import LoadReport
from tunesmith.data.readers import Unreadable, read_rows
from tunesmith.data.records import ORIGIN
from tunesmith.data.steps import StepReport, build_step, run_step
from tunesmith.utils.io import write_json


def _option_files(options: dict) -> list[str]:
    """Files a step reads besides its inputs (eval sets, glossaries, synonym lists)."""
    named = [options.get("glossary"), options.get("synonyms"), *(options.get("against") or [])]
    return [str(f) for f in named if isinstance(f, (str, Path))]


def apply_step(inputs: list[str], options: dict, output: str | Path, report_path: str | Path | None = None,
               keep_origin: bool = False, on_bad_row: str = "error") -> StepReport:
    """Run one registered step over the rows of `inputs` and write what it keeps."""
    refuse_overwriting_inputs(inputs + _option_files(options), [output, report_path])
    load = LoadReport()
    step = build_step(options)
    if step.streams and len(inputs) == 1 and inputs[0].endswith(".jsonl"):
        report = _stream(inputs[0], step, output, keep_origin)
    else:
        out, report = run_step(step, read_input(inputs, on_bad_row, load))
        write_rows(output, out, keep_origin)
    if load.bad_rows:
        report.details["unreadable_rows"] = [str(b) for b in load.bad_rows]
    if report_path:
        write_json(report_path, report.as_dict())
    return report


def _stream(path: str, step, output, keep_origin: bool) -> StepReport:
    """A streaming step over one jsonl file row by row (for files bigger than memory)."""
    import time

    start, seen = time.perf_counter(), [0]

    def rows():
        for r in read_rows(path, "raise"):
            if not isinstance(r.data, Unreadable):
                seen[0] += 1
                yield {**r.data, ORIGIN: r.origin}

    kept = write_rows(output, step.stream(rows()), keep_origin)
    return StepReport(step.name, seen[0], kept, round(time.perf_counter() - start, 3), step.details)


def split_files(inputs: list[str], options: dict, out_dir: str | Path, suffix: str = ".jsonl",
                keep_origin: bool = False, columns: list[str] | None = None) -> dict[str, int]:
    """Write train/eval/test files (names from the ratios' order) into `out_dir`; `columns` names
    the fields of header-less csv/tsv inputs (the outputs then have a header)."""
    from tunesmith.data.steps.split import NAMES, split_rows

    step = build_step({"step": "split", **options})
    outputs = [Path(out_dir) / f"{name}{suffix}" for name in NAMES[: len(step.options.ratios)]]
    refuse_overwriting_inputs(inputs, [*outputs, Path(out_dir) / "split_report.json"])
    parts = split_rows(read_input(inputs, columns=columns), step.options, step.seed())
    counts = {}
    for path, (name, part) in zip(outputs, parts.items()):
        counts[name] = write_rows(path, part, keep_origin)
    write_json(Path(out_dir) / "split_report.json", {"inputs": inputs, "options": step.options.model_dump(),
                                                     "rows": counts})
    return counts


def convert_files(inputs: list[str], to: str, output: str | Path, fmt: str = "auto",
                  template: dict | None = None, on_bad_row: str = "error", keep_origin: bool = False) -> dict:
    """Format conversion; with `template`, structured rows are rendered first."""
    from tunesmith.data.convert import convert_rows

    refuse_overwriting_inputs(inputs, [output])
    load = LoadReport()
    rows = read_input(inputs, on_bad_row, load)
    if template:
        rows, _ = run_step(build_step({"step": "template", **template}), rows)
    out = convert_rows(rows, to, fmt, on_bad_row, load)
    n = write_rows(output, out, keep_origin)
    return {"rows_in": len(rows), "rows_out": n, "bad_rows": [str(b) for b in load.bad_rows]}


def mix_files(sources: list[tuple[str, float | str]], output: str | Path, options: dict | None = None,
              keep_origin: bool = False) -> StepReport:
    """Sample several datasets by weight into one shuffled file (the `mix` step on their rows);
    `options`: the step's other options (total, seed)."""
    paths = [p for p, _ in sources]
    refuse_overwriting_inputs(paths, [output])
    rows = read_input(paths)
    out, report = run_step(build_step({"step": "mix", **(options or {}), "weights": dict(sources)}), rows)
    write_rows(output, out, keep_origin)
    return report
