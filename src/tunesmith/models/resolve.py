"""Turn `model.name_or_path` into a local directory that transformers can load offline."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tunesmith.errors import ModelError
from tunesmith.models.zoo import ZOO, ZooModel


def tunesmith_home() -> Path:
    return Path(os.environ.get("TUNESMITH_HOME", Path.home() / ".cache" / "tunesmith"))


def module_dir(entry: ZooModel, module: str) -> Path:
    """Where one of the zoo model's packages keeps its files (found without importing it)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"model {entry.name!r} is not installed; run: {entry.install}")
    return Path(list(spec.submodule_search_locations)[0])


def package_dir(entry: ZooModel) -> Path:
    """The folder of the zoo model's files; every part package must be installed too."""
    for module, _ in entry.gguf_parts:
        module_dir(entry, module)
    return module_dir(entry, entry.module) / entry.subdir


def zoo_cache_dir(entry: ZooModel) -> Path:
    return tunesmith_home() / "models" / entry.name


def resolve_model(name_or_path: str) -> Path:
    """A loadable HF directory for a zoo name, local directory, .gguf file or cached conversion."""
    if name_or_path in ZOO:
        entry = ZOO[name_or_path]
        if entry.convert_file is None:
            return package_dir(entry)
        cached = zoo_cache_dir(entry)
        if not (cached / "config.json").is_file():
            convert = converter(entry.converter)
            if entry.gguf_parts:
                with joined_gguf(entry) as gguf:
                    convert(gguf, cached)
            else:
                convert(package_dir(entry) / entry.convert_file, cached)
        return cached
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        cached = tunesmith_home() / "models" / f"gguf-{path.stem}-{path.stat().st_size}"
        if not (cached / "config.json").is_file():
            from tunesmith.models.convert import convert_gguf

            convert_gguf(path, cached)
        return cached
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} has no config.json; it is not a Hugging Face model directory")
        return path
    if path.exists() or name_or_path.startswith((".", "/", "~")):
        raise ModelError(f"model path {name_or_path!r} is not a model directory or .gguf file")
    return _hub_snapshot(name_or_path)


def converter(name: str) -> Callable[[Path, Path], None]:
    """The function that turns a zoo package's file into a cached HF directory (imported lazily:
    each pulls in transformers)."""
    if name == "gguf":
        from tunesmith.models.convert import convert_gguf

        return convert_gguf
    if name == "e5-bin":
        from tunesmith.models.e5_bin import convert_e5_bin

        return convert_e5_bin
    raise ModelError(f"unknown zoo converter {name!r}")


@contextmanager
def joined_gguf(entry: ZooModel) -> Iterator[Path]:
    """The GGUF file of a zoo model shipped in parts, joined in a work folder under the zoo
    cache (checked against its sha256) for the conversion, and removed after it."""
    parts = [module_dir(entry, module) / inside for module, inside in entry.gguf_parts]
    models = tunesmith_home() / "models"
    models.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{entry.name}.join-", dir=models) as work:
        joined, digest = Path(work) / entry.convert_file, hashlib.sha256()
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while block := src.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if entry.sha256 and digest.hexdigest() != entry.sha256:
            raise ModelError(f"model {entry.name!r}: its joined parts do not match the published sha256; "
                             f"reinstall them: {entry.install}")
        yield joined


def _hub_snapshot(repo_id: str) -> Path:
    """Download a hub model when online; offline, name the zoo models instead."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id))
    except Exception as err:  # offline, unknown repo, gated: all end the same way for the user
        zoo = ", ".join(ZOO)
        raise ModelError(
            f"unknown model {repo_id!r}: not a zoo name, a local directory or a .gguf file, and the "
            f"hub could not be reached ({type(err).__name__}). Offline models: {zoo}"
        ) from None
