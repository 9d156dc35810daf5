"""Exporters: one file each, registered here by `register_exporter`.

An exporter turns a loaded run (base + adapter, or full weights) into a deployable artifact in
a folder it is given (a temporary one: the pipeline renames it into place only after the
artifact has been loaded back, checked and measured). It returns an `ExportResult` whose
`runtime` is the artifact loaded back from disk, so every figure in the report is measured on
what was written, not on the model in memory. Importing this package registers every exporter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from tunesmith.errors import TunesmithError
from tunesmith.registry import Registry, import_submodules


class ExportError(TunesmithError):
    """An export this input cannot have, or one that failed its parity check (nothing written)."""


class ExportOptions(BaseModel):
    """Base of each exporter's options; unknown options are an error naming the valid ones."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class ExportResult:
    runtime: Any  # a tunesmith.export.runtime.Runtime loaded from the written files
    load_seconds: float
    files: list[str]  # artifact files, relative to the output folder
    details: dict = field(default_factory=dict)  # exporter-specific facts for the report
    # parity against the source model: None = not expected (lossy format); else max |logit diff|
    logit_tolerance: float | None = None
    greedy_must_match: bool = False


@dataclass(frozen=True)
class ExporterSpec:
    name: str
    summary: str
    options_class: type[ExportOptions]
    export: Callable  # (source: Source, out_dir: Path, options) -> ExportResult
    architectures: tuple[str, ...] | None  # model_type values it supports; None: any
    folder_name: Callable[[Any], str]  # options -> default folder under RUN/exports/
    check: Callable[[Any, str], None] | None  # (options, model_type): raise before any loading
    kinds: tuple[str, ...] = ()  # besides causal LMs, the sources it exports (export.source.source_kind)


EXPORTERS: Registry[ExporterSpec] = Registry("export format")


def register_exporter(name: str, summary: str, *, options: type[ExportOptions] = ExportOptions,
                      architectures: tuple[str, ...] | None = None,
                      folder_name: Callable[[Any], str] | None = None,
                      check: Callable[[Any, str], None] | None = None, kinds: tuple[str, ...] = ()):
    """Decorator for an exporter's `export(source, out_dir, options) -> ExportResult`."""

    def wrap(export: Callable) -> Callable:
        EXPORTERS.register(ExporterSpec(name, summary, options, export, architectures,
                                         folder_name or (lambda _opts: name), check, kinds))
        return export

    return wrap


import_submodules(__name__, __path__)  # every module in this package registers itself
