"""What a model name means: a served run (any task), a zoo model, an exported model directory, a
run under the runs root, or a name in the model registry. A name never reaches a path outside
the runs root; a half-written run answers 409, an unknown name 404."""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from tunesmith.config.load import validate_config
from tunesmith.errors import TunesmithError
from tunesmith.models.zoo import ZOO
from tunesmith.runs.rundir import RunDir
from tunesmith.serving.errors import BadRequest, ModelNotFound, ModelNotReady
from tunesmith.serving.virtual import SERVED as VIRTUAL

LORA_TYPES = {"LORA"}  # PEFT types that can share a base in one mixed-adapter batch
PROMPT_LEARNING = {"PROMPT_TUNING", "PREFIX_TUNING", "P_TUNING", "MULTITASK_PROMPT_TUNING", "CPT"}
SHARED = LORA_TYPES | VIRTUAL  # served as adapters of their base (prompt learning: serving/virtual.py)
PICKLE = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


@dataclass(frozen=True)
class Target:
    """One servable model. `kind` adapter: LoRA or prompt-learning weights on `base`; model: weights of
    its own; onnx: an ONNX export (serving/onnx.py)."""

    name: str
    path: str  # run directory, model directory or zoo name
    kind: str  # "adapter" | "model" | "onnx"
    base: str  # the base model of an adapter; for a model, its own path
    task: str | None  # the run's task; None for a plain model
    can_generate: bool
    created: int
    version: str | None = None  # set when the registry routed the name: v3, or the registry's own label
    route_version: object = None  # the version as the registry gave it (handed back when recording)

    @property
    def label(self) -> str:
        """What responses name in `model`: NAME@VERSION when a registry version answered."""
        return f"{self.name}@{self.version}" if self.version else self.name

    @property
    def key(self) -> str:
        """Identity of the weights: the path and the adapter file's modification time, so a run
        rewritten in place loads as a new version while requests on the old one finish."""
        path = Path(self.path)
        folder = path / "adapter" if (path / "adapter").is_dir() else path
        weights = folder / "adapter_model.safetensors"
        stamp = weights.stat().st_mtime_ns if weights.is_file() else 0
        return "serve_" + hashlib.sha1(f"{Path(self.path).resolve()}:{stamp}".encode()).hexdigest()[:12]


def describe(source: str, name: str | None = None) -> Target:
    """A Target for a run directory, a model directory (merged or int8 export) or a zoo name.
    Remembered until the run's files change, so that a request does not re-read its config."""
    path = Path(source)
    stamp = tuple(f.stat().st_mtime_ns if f.exists() else 0 for f in
                  (path, path / "config.yaml", path / "STATUS", path / "adapter" / "adapter_model.safetensors"))
    return _describe(source, name, stamp)


@functools.lru_cache(maxsize=512)
def _describe(source: str, name: str | None, stamp: tuple) -> Target:
    path = Path(source)
    created = int(path.stat().st_mtime) if path.exists() else int(time.time())
    if RunDir.is_run(path):
        return _run_target(RunDir(path), name or path.name, created)
    if (path / "adapter_config.json").is_file():  # a bare PEFT adapter folder
        return _adapter_folder(path, name or path.name, created)
    if source in ZOO or (path.suffix == ".gguf" and path.is_file()):  # gguf: transformers' loader, dequantized
        return Target(name or path.stem if path.suffix == ".gguf" else name or source, source, "model", source,
                      None, True, created)
    if (path / "model.onnx").is_file() and (path / "config.json").is_file():  # export --to onnx: onnxruntime
        from tunesmith.serving.onnx import run_config

        task = (run_config(path) or {}).get("task", {}).get("name")  # classification exports keep their run's
        return Target(name or path.name, str(path), "onnx", str(path), task, _generates(path), created)
    if (path / "config.json").is_file():
        _safetensors_only(path)
        return Target(name or path.name, str(path), "model", str(path), None, _generates(path), created)
    raise ModelNotFound(f"model {name or source!r} is not a run directory, model directory or zoo name", "model")


def _run_target(run: RunDir, name: str, created: int) -> Target:
    from tunesmith.tasks import TASKS

    try:
        config = validate_config(run.read_config(), str(run.path / "config.yaml"))
    except TunesmithError as err:
        raise ModelNotReady(f"run {name!r} cannot be served: {err}", "model") from None
    generates = TASKS.get(config.task.name).model_class().__name__ == "AutoModelForCausalLM"
    if (run.adapter_dir / "adapter_config.json").is_file():
        _safetensors_only(run.adapter_dir)
        adapter = json.loads((run.adapter_dir / "adapter_config.json").read_text())
        kind_of = adapter.get("peft_type")
        if kind_of in PROMPT_LEARNING - VIRTUAL and generates:
            raise BadRequest(f"run {name!r} ({kind_of}) learns virtual tokens that depend on a task id or on "
                             "the request; the server does not serve them: use `tunesmith generate`", "model")
        shared = kind_of in SHARED and not adapter.get("use_dora") and generates
        kind, base = ("adapter", config.model.name_or_path) if shared else ("model", str(run.path))
        return Target(name, str(run.path), kind, base, config.task.name, generates, created)
    if (run.model_dir / "config.json").is_file():
        _safetensors_only(run.model_dir)
        return Target(name, str(run.path), "model", str(run.path), config.task.name, generates, created)
    raise ModelNotReady(f"run {name!r} has no finished adapter/ or model/ yet (status: {run.status()})", "model")


def _adapter_folder(path: Path, name: str, created: int) -> Target:
    _safetensors_only(path)
    adapter = json.loads((path / "adapter_config.json").read_text())
    base = adapter.get("base_model_name_or_path")
    if not base or adapter.get("peft_type") not in SHARED or adapter.get("use_dora"):
        raise BadRequest(f"{name}: only LoRA and prompt-learning adapter folders naming their base model can be "
                         "served alone; "
                         "serve the run directory instead", "model")
    return Target(name, str(path), "adapter", base, None, True, created)


def _safetensors_only(folder: Path) -> None:
    if not any(folder.glob("*.safetensors")) and any(p for g in PICKLE for p in folder.glob(g)):
        raise BadRequest(f"{folder.name}: weights are pickle files; tunesmith serves safetensors only", "model")


def _generates(model_dir: Path) -> bool:
    try:
        archs = json.loads((model_dir / "config.json").read_text()).get("architectures") or []
    except ValueError:
        return False
    return any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")) for a in archs)


class Catalog:
    """Names the server answers to. `registry` (optional) routes registered names to versions;
    `resolvers` (optional) are callables name -> path or None, asked first, with an optional
    `names()` for the listing (the jobs store finds `ft:` models so, in the caller's project)."""

    def __init__(self, runs_root: str | Path = "runs", sources: list[str] = (), registry=None,
                 poll_seconds: float = 0.5, resolvers: list = ()):
        self.root = Path(runs_root).resolve()
        self.registry = registry
        self.resolvers = list(resolvers)
        self.named: dict[str, Target] = {}
        self._routes: dict[tuple[str, str | None], object] = {}
        self._generation, self._checked, self._poll = None, 0.0, poll_seconds
        self._lock = threading.Lock()
        for source in sources:
            self.add(source)

    # --- names ---------------------------------------------------------------------------
    def add(self, source: str, name: str | None = None) -> Target:
        """Serve `source` (run, model dir or zoo name) under `name` (default: its own name)."""
        if not Path(source).exists() and source not in ZOO:
            if self._is_registered(source):
                return self.resolve(source)
            if (self.root / source).exists():  # a run named relative to the runs root
                source = str(self._inside_root(source))
        target = describe(source, name or self._default_name(source))
        self.named[target.name] = target
        return target

    def add_under_root(self, name: str, path: str) -> Target:
        """An adapter added at run time (POST /v1/adapters): only from inside the runs root."""
        return self.add(str(self._inside_root(path, "path")), name)

    def remove(self, name: str) -> Target:
        if name not in self.named:
            raise ModelNotFound(f"model {name!r} is not served", "name")
        return self.named.pop(name)

    def _default_name(self, source: str) -> str:
        path = Path(source).resolve()
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else Path(source).name or source

    def _inside_root(self, name: str, param: str = "model") -> Path:
        path = (self.root / name).resolve()
        if Path(name).is_absolute() and Path(name).resolve().is_relative_to(self.root):
            path = Path(name).resolve()
        if ".." in Path(name).parts or "\\" in name or not path.is_relative_to(self.root):
            raise ModelNotFound(f"model {name!r} does not exist", param)
        return path

    # --- lookup --------------------------------------------------------------------------
    def resolve(self, name: str, subject: str | None = None) -> Target:
        route = self._route(name, subject)
        if route is not None:
            target = describe(str(route.run_path), route.name)
            version = route.version if isinstance(route.version, str) else f"v{route.version}"
            return replace(target, version=version, route_version=route.version)
        for resolver in self.resolvers:
            found = resolver(name)
            if found is not None:
                return describe(str(found), name)
        if name in self.named:
            return self.named[name]
        path = self._inside_root(name)
        if not RunDir.is_run(path):
            raise ModelNotFound(f"model {name!r} does not exist; GET /v1/models lists what is served", "model")
        return describe(str(path), name)

    def list(self) -> list[Target]:
        from tunesmith.runs.reader import find_runs

        found = dict(self.named)
        names = [n for source in (self.registry, *self.resolvers) for n in getattr(source, "names", lambda: [])()]
        for name in names:
            try:
                found[name] = self.resolve(name)
            except TunesmithError:
                continue
        if self.root.is_dir():
            for path in find_runs(self.root):
                name = str(path.relative_to(self.root)) if path != self.root else path.name
                if name not in found:
                    try:
                        found[name] = describe(str(path), name)
                    except TunesmithError:
                        continue  # half-written runs are not listed
        return list(found.values())

    def known(self, name: str) -> bool:
        """Names that may become metric labels: served, registered or runs under the root."""
        return name in self.named or self._is_registered(name) or RunDir.is_run(self.root / name)

    # --- registry ------------------------------------------------------------------------
    def _is_registered(self, name: str) -> bool:
        return self._route(name, None) is not None

    def _route(self, name: str, subject: str | None):
        """The registry's route, cached until its generation changes (checked every poll_seconds)."""
        if self.registry is None:
            return None
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= self._poll:
                generation = self.registry.generation()
                if generation != self._generation:
                    self._routes.clear()
                    self._generation = generation
                self._checked = now
            key = (name, subject)
            if key not in self._routes:
                self._routes[key] = self.registry.route(name, subject)
                if len(self._routes) > 10_000:  # subjects are unbounded; keep the cache small
                    self._routes.clear()
            return self._routes[key]
