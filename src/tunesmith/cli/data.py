"""`tunesmith data ...`: validate, clean, dedup, decontaminate, balance, split, convert,
augment and mix data files. Each command parses options and calls tunesmith.data.tools."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from tunesmith.utils.progress import console

data_app = typer.Typer(help="Prepare fine-tuning data: validate, clean, dedup, decontaminate, "
                       "balance, split, convert, augment, mix.", no_args_is_help=True)

OUT = typer.Option(..., "--output", "-o", help="Output file (.jsonl, .json or .csv); written atomically.")
REPORT = typer.Option(None, "--report", help="Also write the step's full report (JSON) here.")
FIELDS = typer.Option(None, "--fields", help="Comma-separated top-level fields to use (default: all text).")
ORIGIN_OPT = typer.Option(False, "--keep-origin", help="Keep each row's source file:line as _origin.")
SEED = typer.Option(42, "--seed", help="Random seed (reproducible output).")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _extra(options: list[str] | None) -> dict:
    """--set key=value pairs (values parsed as YAML) for any step option without a flag."""
    from tunesmith.errors import ConfigError
    from tunesmith.utils.yaml_files import parse_yaml

    out = {}
    for item in options or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--set {item!r}: write key=value")
        out[key.strip()] = parse_yaml(value, f"--set {item}", ConfigError)
    return out


SET = typer.Option(None, "--set", help="Any other step option as key=value (see `tunesmith data steps`).")


def _run(inputs: list[str], options: dict, output: Path, report: Path | None, keep_origin: bool) -> None:
    from tunesmith.data.tools import apply_step

    result = apply_step(inputs, options, output, report, keep_origin)
    console.print(f"[bold]{result.step}[/]: {result.rows_in} rows in, {result.rows_out} rows out "
                  f"-> {output} ({result.seconds:.1f}s)", highlight=False)
    _summary(result.details)


def _summary(details: dict) -> None:
    """Print the report's scalar figures; lists are in the --report JSON."""
    for key, value in details.items():
        if isinstance(value, (int, float, str)) or (isinstance(value, dict) and len(json.dumps(value)) < 200):
            console.print(f"  {key}: {value}", highlight=False)


@data_app.command("steps")
def steps_list():
    """Data steps usable in `data.pipeline` of a run config, with their options."""
    from tunesmith.data.steps import STEPS

    for step in STEPS:
        console.print(f"[bold]{step.name}[/]: {step.summary}")
        for name, f in step.Options.model_fields.items():
            if name != "step":
                default = "required" if f.is_required() else f"default {f.get_default(call_default_factory=True)!r}"
                console.print(f"    {name} ({default}): {f.description}", highlight=False, markup=False)


@data_app.command("validate")
def validate(
    file: Path = typer.Argument(..., help="Data file to check."),
    fmt: str = typer.Option("auto", "--format", "-f", help="Row format (auto-detected by default)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Run config: its model's tokenizer, "
                                          "template and cutoff count tokens, and steps/time are estimated."),
    cutoff: Optional[int] = typer.Option(None, "--cutoff", help="Longest row in tokens (default: config or 1024)."),
    histogram: Optional[Path] = typer.Option(None, "--histogram", help="Tokens-per-row histogram PNG "
                                             "(default: beside --report as <report stem>.tokens.png)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write every problem and the statistics (JSON)."),
    show: int = typer.Option(100, "--show", help="Print at most this many problems (all go to --report)."),
    strict: bool = typer.Option(False, "--strict", help="Warnings count as errors."),
    tokens_per_second: Optional[float] = typer.Option(None, "--tokens-per-second",
                                                      help="Your measured training speed, for the time estimate."),
):
    """List every problem with its line, then statistics; exit code 1 when errors are found."""
    from tunesmith.data.validate import save_outputs, validate_file

    run_config = None
    if config:
        from tunesmith.config import load_config
        from tunesmith.training.preflight import validate_for_config

        run_config = load_config(config, [f"data.cutoff_len={cutoff}"] if cutoff is not None else [])
        result = validate_for_config(str(file), run_config, None if fmt == "auto" else fmt)
    else:
        result = validate_file(file, fmt, cutoff=1024 if cutoff is None else cutoff)
    for problem in result.problems[:show]:
        color = "red" if problem.severity == "error" else "yellow"
        console.print(f"[{color}]{problem.severity}[/] {problem.origin}: {problem.reason}", highlight=False,
                      soft_wrap=True)  # one line per problem, whatever the terminal width
    if len(result.problems) > show:
        console.print(f"... and {len(result.problems) - show} more (use --report to see all)")
    _print_stats(result)
    payload = result.as_dict()
    if run_config is not None:
        from tunesmith.training.preflight import estimate_run

        payload["estimate"] = estimate_run(result, run_config, tokens_per_second)
        _print_estimate(payload["estimate"])
    png = save_outputs(result, payload, report, histogram)
    if png is not None:
        console.print(f"histogram: {png}")
    if result.errors or (strict and result.warnings):
        sys.exit(1)  # SystemExit, not typer.Exit: click returns (not raises) Exit in non-standalone mode


def _print_stats(result) -> None:
    s = result.stats()
    table = Table(title=f"{result.path} ({result.format or 'unknown format'})")
    for col in ("rows", "valid", "errors", "warnings", "tokens", "median/row", "max/row", f"over {s['cutoff']}"):
        table.add_column(col)
    approx = "~" if s["tokens_estimated"] else ""
    table.add_row(str(s["rows"]), str(s["valid_rows"]), str(s["errors"]), str(s["warnings"]),
                  f"{approx}{s['total_tokens']:,}", str(s["tokens_per_row"]["median"]),
                  str(s["tokens_per_row"]["max"]), str(s["over_cutoff"]))
    console.print(table)
    if s["tokens_estimated"]:
        console.print("tokens are estimated (~4 characters or 1 CJK character each); pass --config for exact counts")


def _print_estimate(e: dict) -> None:
    minutes = f"{e['estimated_seconds'] / 60:.1f} min" if e["estimated_seconds"] is not None else "?"
    console.print(f"estimate: {e['train_rows']} train rows, {e['steps']} steps ({e['steps_per_epoch']}/epoch, "
                  f"{e['epochs']} epochs), {e['trained_tokens']:,} tokens, about {minutes} at "
                  f"{e['tokens_per_second']} tok/s ({e['speed_basis']})", highlight=False)


@data_app.command("clean")
def clean(
    inputs: List[str] = typer.Argument(..., help="Input files."),
    output: Path = OUT,
    no_nfkc: bool = typer.Option(False, "--no-nfkc", help="Skip Unicode NFKC normalisation."),
    strip_html: bool = typer.Option(False, "--strip-html", help="Remove HTML tags, unescape entities."),
    pii: Optional[str] = typer.Option(None, "--pii", help="Mask these kinds, comma-separated: email, cn_id, "
                                      "bank_card, cn_mobile, cn_landline, us_ssn, phone; or 'all'."),
    glossary: Optional[Path] = typer.Option(None, "--glossary", help="YAML of variant: canonical term."),
    min_chars: int = typer.Option(0, "--min-chars", help="Drop rows with less text."),
    max_chars: Optional[int] = typer.Option(None, "--max-chars", help="Drop rows with more text."),
    min_letter_ratio: float = typer.Option(0.0, "--min-letter-ratio", help="Drop rows with fewer letters."),
    max_repeat_ratio: float = typer.Option(1.0, "--max-repeat-ratio", help="Drop highly repetitive rows."),
    fields: Optional[str] = FIELDS, report: Optional[Path] = REPORT, keep_origin: bool = ORIGIN_OPT,
    extra: Optional[List[str]] = SET,
):
    """Normalise text, mask personal data, apply a glossary and filter rows."""
    from tunesmith.data.pii import PII_KINDS

    kinds = list(PII_KINDS) if pii == "all" else (_csv(pii) or [])
    _run(inputs, {"step": "clean", "nfkc": not no_nfkc, "strip_html": strip_html, "pii": kinds,
                  "glossary": str(glossary) if glossary else None, "min_chars": min_chars,
                  "max_chars": max_chars, "min_letter_ratio": min_letter_ratio,
                  "max_repeat_ratio": max_repeat_ratio, "fields": _csv(fields), **_extra(extra)},
         output, report, keep_origin)


@data_app.command("dedup")
def dedup(
    inputs: List[str] = typer.Argument(..., help="Input files (one .jsonl file is streamed)."),
    output: Path = OUT,
    method: str = typer.Option("minhash", "--method", help="exact or minhash (near-duplicates too)."),
    threshold: float = typer.Option(0.8, "--threshold", help="Jaccard similarity for near-duplicates."),
    shingle_size: int = typer.Option(3, "--shingle-size", help="Tokens per shingle (CJK: characters)."),
    num_perm: int = typer.Option(128, "--num-perm", help="MinHash permutations."),
    fields: Optional[str] = FIELDS, report: Optional[Path] = REPORT, keep_origin: bool = ORIGIN_OPT,
):
    """Remove exact and near-duplicate rows; report each cluster and the row kept."""
    _run(inputs, {"step": "dedup", "method": method, "threshold": threshold, "shingle_size": shingle_size,
                  "num_perm": num_perm, "fields": _csv(fields)}, output, report, keep_origin)


@data_app.command("decontaminate")
def decontaminate(
    inputs: List[str] = typer.Argument(..., help="Training files."),
    against: List[str] = typer.Option(..., "--against", help="Evaluation/benchmark file (repeatable)."),
    output: Path = OUT,
    n: int = typer.Option(10, "--n", help="Tokens per n-gram (CJK: characters)."),
    min_matches: int = typer.Option(1, "--min-matches", help="Shared n-grams that make a row contaminated."),
    fields: Optional[str] = FIELDS, report: Optional[Path] = REPORT, keep_origin: bool = ORIGIN_OPT,
):
    """Remove training rows that share n-grams with evaluation rows; report each match."""
    _run(inputs, {"step": "decontaminate", "against": against, "n": n, "min_matches": min_matches,
                  "fields": _csv(fields)}, output, report, keep_origin)


@data_app.command("balance")
def balance(
    inputs: List[str] = typer.Argument(..., help="Input files."),
    output: Path = OUT,
    label: str = typer.Option(..., "--label", help="Label field (dotted path)."),
    target: Optional[str] = typer.Option(None, "--target", help="Shares like pos=0.5,neg=0.5 (default uniform)."),
    mode: str = typer.Option("under", "--mode", help="under, over or keep_size."),
    seed: int = SEED, report: Optional[Path] = REPORT, keep_origin: bool = ORIGIN_OPT,
):
    """Under- or over-sample rows to a target label distribution."""
    shares = dict(p.partition("=")[::2] for p in _csv(target)) if target else "uniform"  # the step checks numbers
    _run(inputs, {"step": "balance", "label": label, "target": shares, "mode": mode, "seed": seed},
         output, report, keep_origin)


@data_app.command("split")
def split(
    inputs: List[str] = typer.Argument(..., help="Input files."),
    out_dir: Path = typer.Option(..., "--output-dir", "-o", help="Folder for train/eval/test files."),
    ratios: str = typer.Option("7:1:2", "--ratios", help="train:eval:test, e.g. 7:1:2 or 0.8,0.2."),
    stratify: Optional[str] = typer.Option(None, "--stratify", help="Label field to stratify by."),
    group: Optional[str] = typer.Option(None, "--group", help="Key field; no group straddles splits."),
    time: Optional[str] = typer.Option(None, "--time", help="Date field; train oldest, test newest."),
    suffix: str = typer.Option(".jsonl", "--suffix", help="Output file type: .jsonl, .json or .csv."),
    seed: int = SEED, keep_origin: bool = ORIGIN_OPT,
):
    """Split into train/eval/test files: by ratio, stratified, grouped or by time."""
    from tunesmith.data.tools import split_files

    parsed = ratios if ":" in ratios else ratios.split(",")  # the step checks the numbers
    counts = split_files(inputs, {"ratios": parsed, "stratify": stratify, "group": group, "time": time,
                                  "seed": seed}, out_dir, suffix, keep_origin)
    console.print(", ".join(f"{k}: {v} rows" for k, v in counts.items()) + f" -> {out_dir}")


@data_app.command("convert")
def convert(
    inputs: List[str] = typer.Argument(..., help="Input files, or db.sqlite::table / db.sqlite::'SELECT ...'."),
    to: str = typer.Option(..., "--to", help="openai, sharegpt, alpaca, text, preference, "
                           "sharegpt-preference or openai-preference."),
    output: Path = OUT,
    fmt: str = typer.Option("auto", "--from", help="Input row format (auto-detected)."),
    instruction: Optional[str] = typer.Option(None, "--instruction", help="Jinja template for structured rows."),
    input_t: Optional[str] = typer.Option(None, "--input", help="Jinja template of the input."),
    output_t: Optional[str] = typer.Option(None, "--answer", help="Jinja template of the answer (output)."),
    system: Optional[str] = typer.Option(None, "--system", help="Jinja template of a system prompt."),
    text: Optional[str] = typer.Option(None, "--text", help="Jinja template of a plain-text row."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and list bad rows instead of stopping."),
    keep_origin: bool = ORIGIN_OPT,
):
    """Convert between formats; render structured records (csv/jsonl/SQL) through templates."""
    from tunesmith.data.tools import convert_files

    template = {k: v for k, v in {"instruction": instruction, "input": input_t, "output": output_t,
                                  "system": system, "text": text}.items() if v}
    result = convert_files(inputs, to, output, fmt, template or None, "skip" if skip_bad else "error", keep_origin)
    console.print(f"{result['rows_in']} rows in, {result['rows_out']} rows out -> {output}")
    for bad in result["bad_rows"][:50]:
        console.print(f"[yellow]skipped[/] {bad}", highlight=False)


@data_app.command("augment")
def augment(
    inputs: List[str] = typer.Argument(..., help="Input files."),
    output: Path = OUT,
    ops: str = typer.Option("synonym,swap,delete", "--ops", help="synonym, insert, swap, delete, mask_fill, "
                            "back_translate (comma-separated)."),
    synonyms: Optional[Path] = typer.Option(None, "--synonyms", help="YAML/JSON word -> [synonyms]."),
    alpha: float = typer.Option(0.1, "--alpha", help="Share of words changed."),
    copies: int = typer.Option(1, "--copies", help="Variants per row."),
    fields: Optional[str] = typer.Option(None, "--fields", help="Fields to change (default: prompt fields)."),
    mask_model: Optional[Path] = typer.Option(None, "--mask-model", help="Local masked-LM dir (mask_fill)."),
    translate_models: Optional[str] = typer.Option(None, "--translate-models", help="there_dir,back_dir."),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", help="OpenAI-compatible URL (back_translate)."),
    seed: int = SEED, report: Optional[Path] = REPORT, keep_origin: bool = ORIGIN_OPT,
):
    """Add augmented variants of rows (each marked with _augmented_from)."""
    options = {"step": "augment", "ops": _csv(ops), "synonyms": str(synonyms) if synonyms else None,
               "alpha": alpha, "copies": copies, "seed": seed, "endpoint": endpoint,
               "mask_model": str(mask_model) if mask_model else None,
               "translate_models": _csv(translate_models) or []}
    if fields:
        options["fields"] = _csv(fields)
    _run(inputs, options, output, report, keep_origin)


@data_app.command("mix")
def mix(
    sources: List[str] = typer.Argument(..., help="FILE:WEIGHT pairs, e.g. a.jsonl:0.7 b.json:0.3."),
    output: Path = OUT,
    total: Optional[int] = typer.Option(None, "--total", help="Rows out (default: no source repeats rows)."),
    seed: int = SEED, keep_origin: bool = ORIGIN_OPT,
):
    """Mix datasets by weight into one shuffled file for multi-task training."""
    from tunesmith.data.tools import mix_files

    pairs = []
    for item in sources:
        path, sep, weight = item.rpartition(":")
        if not sep:
            raise typer.BadParameter(f"{item!r}: write FILE:WEIGHT")
        pairs.append((path, weight))  # the mix step checks the weights
    result = mix_files(pairs, output, total, seed, keep_origin)
    console.print(f"{result.rows_out} rows -> {output}")
    for path, c in result.details["sources"].items():
        console.print(f"  {path}: {c['taken']} of {c['available']}{' (repeated)' if c['repeated'] else ''}")
