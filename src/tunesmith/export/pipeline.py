"""`run_export`: check input, export into a temp folder, load back, verify, measure, then rename.

Nothing appears at the output path unless the artifact loaded back and passed its checks.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path

from pydantic import ValidationError

from tunesmith.export import EXPORTERS, ExportError, ExporterSpec, measure
from tunesmith.export.report import append_exports_row, plot_exports
from tunesmith.utils.io import atomic_path, replace_dir, write_json
from tunesmith.utils.progress import progress, say


def parse_options(spec: ExporterSpec, options: dict):
    try:
        return spec.options_class(**{k: v for k, v in options.items() if v is not None})
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        allowed = ", ".join(f"--{k.replace('_', '-')}" for k in spec.options_class.model_fields) or "none"
        raise ExportError(f"{spec.name}: option {key}={first.get('input')!r}: {first['msg']} "
                          f"(options for {spec.name}: {allowed})") from None


def check_architecture(spec: ExporterSpec, source_path: str) -> str:
    from tunesmith.export.source import model_type_of

    model_type = model_type_of(source_path)
    if spec.architectures is not None and model_type not in spec.architectures:
        raise ExportError(f"{spec.name} export does not support {model_type!r} models; supported "
                          f"architectures: {', '.join(spec.architectures)}. Formats for any model: "
                          + ", ".join(s.name for s in EXPORTERS if s.architectures is None))
    return model_type


def check_input(spec: ExporterSpec, options, source_path: str) -> str:
    from tunesmith.export.source import source_kind

    model_type = check_architecture(spec, source_path)
    kind = source_kind(source_path)
    if kind != "causal" and kind not in spec.kinds:
        takes = [s.name for s in EXPORTERS if kind in s.kinds]
        raise ExportError(f"{spec.name} export takes causal LMs; {source_path} is {_a(kind)} model. "
                          f"Formats for it: {', '.join(takes) or 'none'}")
    if spec.check is not None:
        spec.check(options, model_type)
    return model_type


def _a(kind: str) -> str:
    return f"a {kind}" if kind in ("classification", "encoder") else f"a {kind} task's"


def output_folder(spec: ExporterSpec, options, source_path: str, out: str | None, overwrite: bool) -> Path:
    from tunesmith.runs.rundir import RunDir

    if out:
        target = Path(out)
    elif RunDir.is_run(source_path):
        target = Path(source_path) / "exports" / spec.folder_name(options)
    else:  # never write into a model folder (it may be a shared cache)
        target = Path("exports") / f"{Path(source_path).name}-{spec.folder_name(options)}"
    if target.exists() and not overwrite:
        raise ExportError(f"{target} already exists; pass --overwrite to replace it or --out to pick another folder")
    check_replaceable(target)
    return target


REPORT = "export_report.json"  # written into every export: the mark of a folder --overwrite may replace


def check_replaceable(target: Path) -> None:
    """--overwrite replaces only an earlier export (or an empty folder), never a user's own folder."""
    if not target.exists() and not target.is_symlink():
        return
    if not target.is_dir() or target.is_symlink():
        raise ExportError(f"{target} is a file, not an export folder; choose another --out")
    if (target / REPORT).is_file() or not any(target.iterdir()):
        return
    raise ExportError(f"{target} is not a tunesmith export (it has no {REPORT}); --overwrite replaces only an "
                      "earlier export. Choose another --out, or move the folder away yourself")


def run_export(source_path: str, kind: str, out: str | None = None, *, overwrite: bool = False,
               options: dict | None = None, data: str | None = None, new_tokens: int = 32) -> dict:
    """Export `source_path` (run dir or model) to `kind`; returns the report that was written."""
    spec = EXPORTERS.get(kind)
    opts = parse_options(spec, options or {})
    model_type = check_input(spec, opts, source_path)
    target = output_folder(spec, opts, source_path, out, overwrite)
    with progress(f"export {kind}", 4) as advance:
        advance(0, info="loading")
        source, baseline, reference = _baseline(source_path, data, new_tokens)
        advance(1, info="exporting")
        with replace_dir(target) as tmp:  # an old export is removed only after the new one is in place
            result = _call_exporter(spec, source, tmp, opts)
            advance(1, info="measuring")
            report = _measure(spec, opts, source, result, tmp, baseline, reference, new_tokens)
            report.update(format=kind, source=str(source_path), output=str(target), model_type=model_type)
            advance(1, info="writing")
            write_json(tmp / REPORT, report)
        advance(1, info="done")
    append_exports_row(source.run.path if source.run else target.parent, report)
    if source.run:
        plot_exports(source.run.path)
    say(f"[green]exported[/] {kind} -> {target}")
    return report


def _call_exporter(spec, source, folder: Path, options):
    """Run the exporter; a library failure becomes one line (the traceback stays for --debug)."""
    try:
        return spec.export(source, folder, options)
    except ExportError:
        raise
    except Exception as err:
        first = str(err).splitlines()[0] if str(err) else ""
        raise ExportError(f"{spec.name} export failed: {type(err).__name__}: {first}"
                          "; nothing was written (add --debug for the traceback)") from err


def _baseline(source_path: str, data: str | None, new_tokens: int):
    """Load the unexported model and measure it: the reference every export is compared with.

    The measurement is kept in RUN/.export_baseline/ and reused by the run's next exports until
    its weights, the eval data or the timing settings change (exporting all formats of a run
    then measures the source once, not once per format)."""
    from tunesmith.export.source import load_source

    start = time.perf_counter()
    source = load_source(source_path, data)
    load_seconds = time.perf_counter() - start
    cache = _baseline_cache(source, data, new_tokens)
    if cache is not None and cache.is_file():
        import torch

        saved = torch.load(cache, weights_only=True)
        return source, saved["baseline"], saved["reference"]
    baseline, reference = _measure_source(source, new_tokens)
    baseline["load_s"] = round(load_seconds, 3)
    if cache is not None:
        import torch

        with atomic_path(cache) as tmp:
            torch.save({"baseline": baseline, "reference": reference}, tmp)
    return source, baseline, reference


def _measure_source(source, new_tokens: int) -> tuple[dict, dict]:
    from tunesmith.export.runtime import TorchEncoderRuntime, TorchRuntime
    from tunesmith.export.source import OUTPUTS

    if source.kind != "causal":
        runtime = TorchEncoderRuntime(source.loaded.model, OUTPUTS[source.kind])
        batch = source.prompt_batch()
        baseline = {"bytes_fp32_in_memory": measure.model_bytes(source.loaded.model),
                    **measure.encoder_speed(runtime, source.prompt_batches()), "eval_loss": None,
                    "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
        return baseline, {"batch": batch, "outputs": runtime.outputs(batch)}
    runtime = TorchRuntime(source.loaded.model, source.tokenizer.pad_token_id)
    prompts = source.prompt_ids()
    batch = measure.sample_batch(source.eval_features, source.collator(), prompts, source.tokenizer.pad_token_id)
    figures, outputs = measure.speed(runtime, prompts, new_tokens)
    baseline = {
        "bytes_fp32_in_memory": measure.model_bytes(source.loaded.model), **figures,
        "eval_loss": measure.eval_loss(runtime, source.eval_features, source.collator()),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return baseline, {"batch": batch, "logits": runtime.logits(**batch), "outputs": outputs}


def _baseline_cache(source, data: str | None, new_tokens: int) -> Path | None:
    """RUN/.export_baseline/<key>.pt, the key naming everything the measurement depends on."""
    if source.run is None:
        return None
    from tunesmith.export.source import PROMPTS

    weights = source.run.adapter_dir if source.run.adapter_dir.is_dir() else source.run.model_dir
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in weights.iterdir() if p.is_file())
    key = json.dumps([files, source.config.model.name_or_path, data, new_tokens, PROMPTS,
                      len(source.eval_features)], default=str)
    return source.run.path / ".export_baseline" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"


def _measure(spec, opts, source, result, folder: Path, baseline: dict, reference: dict, new_tokens: int) -> dict:
    runtime = result.runtime
    if source.kind != "causal":  # parity per fixed prompt: its outputs within the tolerance
        prompts = source.prompt_batches()
        figures, loss = measure.encoder_speed(runtime, prompts), None
        diffs = measure.output_diffs(runtime, reference["batch"], reference["outputs"])
        diff, same_greedy = max(diffs), sum(d <= result.logit_tolerance for d in diffs)
    else:
        prompts = source.prompt_ids()
        figures, outputs = measure.speed(runtime, prompts, new_tokens)
        loss = measure.eval_loss(runtime, source.eval_features, source.collator())
        diff = measure.max_logit_diff(runtime, reference["batch"], reference["logits"])
        same_greedy = sum(a == b for a, b in zip(outputs, reference["outputs"]))
    if result.logit_tolerance is not None and not diff <= result.logit_tolerance:
        raise ExportError(f"{spec.name} export failed its check: max |logit diff| {diff:.3g} exceeds "
                          f"{result.logit_tolerance:g}; nothing was written")
    if result.greedy_must_match and same_greedy != len(prompts):
        raise ExportError(f"{spec.name} export failed its check: greedy text differs from PyTorch on "
                          f"{len(prompts) - same_greedy} of {len(prompts)} prompts; nothing was written")
    size = measure.folder_bytes(folder, result.files)
    before = baseline["eval_loss"]
    return {
        "options": opts.model_dump(), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "files": result.files, "size_bytes": size,
        "size_vs_source": round(size / baseline["bytes_fp32_in_memory"], 4),
        "export": {"load_s": round(result.load_seconds, 3), "runtime": runtime.name, **figures},
        "baseline": baseline,
        "quality": {
            "metric": "eval_loss", "eval_rows": len(source.eval_features), "source": before, "export": loss,
            "delta": None if loss is None or before is None else loss - before, "note": source.eval_note,
        },
        "parity": {
            "max_abs_logit_diff": diff, "tolerance": result.logit_tolerance,
            "greedy_equal_prompts": same_greedy, "prompts": len(prompts),
            "greedy_must_match": result.greedy_must_match,
        },
        "details": result.details,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": _threads(),
                    "note": "CPU; timings depend on machine load"},
    }


def _threads() -> int:
    import torch

    return torch.get_num_threads()

