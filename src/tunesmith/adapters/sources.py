"""Where an adapter comes from: a finished run directory or a bare PEFT adapter directory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tunesmith.config.load import validate_config
from tunesmith.config.schema import RunConfig
from tunesmith.errors import RunDirError
from tunesmith.methods import METHODS
from tunesmith.runs.rundir import RunDir


@dataclass
class AdapterSource:
    path: Path  # the folder holding adapter_config.json
    base: str  # base model name or path
    config: RunConfig  # the run's config, or defaults naming the base for a bare adapter

    @property
    def rank(self) -> int | None:
        return self._adapter_config().get("r")

    @property
    def peft_type(self) -> str | None:
        """PEFT's name for the adapter kind, e.g. LORA (LoRA, DoRA, rsLoRA, PiSSA ...) or IA3."""
        return self._adapter_config().get("peft_type")

    def _adapter_config(self) -> dict:
        return json.loads((self.path / "adapter_config.json").read_text())


def adapter_source(path: str | Path) -> AdapterSource:
    """A run directory (its adapter/) or a folder with a PEFT adapter_config.json."""
    path = Path(path)
    if RunDir.is_run(path):
        run = RunDir(path)
        config = validate_config(run.read_config(), str(path / "config.yaml"))
        if not run.adapter_dir.is_dir():
            raise RunDirError(f"{path} holds no adapter/ (method {config.method.name} saves a whole "
                              "model, or the run did not finish)")
        if not METHODS.get(config.method.name).peft:
            raise RunDirError(f"{path}: method {config.method.name} does not save a PEFT adapter; "
                              "only PEFT adapters can be combined")
        return AdapterSource(run.adapter_dir, config.model.name_or_path, config)
    file = path / "adapter_config.json"
    if not file.is_file():
        raise RunDirError(f"{path} is neither a run directory nor a PEFT adapter (no adapter_config.json)")
    base = json.loads(file.read_text()).get("base_model_name_or_path")
    if not base:
        raise RunDirError(f"{file} does not name its base model (base_model_name_or_path)")
    return AdapterSource(path, base, validate_config({"model": {"name_or_path": base}}))
