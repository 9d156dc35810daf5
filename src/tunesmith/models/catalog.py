"""What `tunesmith models list | pull | info` report."""

from __future__ import annotations

import json

from tunesmith.errors import ModelError, TunesmithError
from tunesmith.models.resolve import package_dir, resolve_model, zoo_cache_dir
from tunesmith.models.zoo import ZOO


def zoo_status() -> list[dict]:
    rows = []
    for entry in ZOO.values():
        try:
            package_dir(entry)
            ready = entry.convert_file is None or (zoo_cache_dir(entry) / "config.json").is_file()
            status = "ready" if ready else "installed (run: tunesmith models pull " + entry.name + ")"
        except ModelError:
            status = f"not installed ({entry.install})"
        rows.append({**entry.__dict__, "status": status})
    return rows


def pull(name: str) -> str:
    if name not in ZOO:
        raise TunesmithError(f"unknown zoo model {name!r}; choose one of: {', '.join(ZOO)}")
    return str(resolve_model(name))


def info(name: str) -> dict:
    path = resolve_model(name)
    config = json.loads((path / "config.json").read_text())
    out = {"name": name, "path": str(path), "architectures": config.get("architectures"),
           "model_type": config.get("model_type"), "hidden_size": config.get("hidden_size"),
           "layers": config.get("num_hidden_layers"), "vocab_size": config.get("vocab_size"),
           "max_position_embeddings": config.get("max_position_embeddings")}
    if name in ZOO:
        out.update({"license": ZOO[name].license, "package": ZOO[name].package, "summary": ZOO[name].summary})
    return out
