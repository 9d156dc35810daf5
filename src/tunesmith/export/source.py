"""What an export starts from: a run (or plain model) loaded once, its eval set and fixed prompts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tunesmith.errors import TunesmithError
from tunesmith.inference.load import Loaded, load_for_inference
from tunesmith.models import resolve_model
from tunesmith.runs.rundir import RunDir

# The fixed prompt set for latency and tokens/s: short, mixed languages and domains, so the
# numbers in every exports.md row are comparable across formats and runs.
PROMPTS = [
    "Who are you?",
    "Explain in one sentence what a bond's yield to maturity is.",
    "用一句话解释什么是高血压。",
    "Write a Python function that reverses a string.",
    "What should a simple rental agreement include?",
    "请把这句话翻译成英文：今天天气很好。",
]


def model_config_path(path: str) -> Path:
    """config.json of the model a run or model path stands for, found without loading weights."""
    if RunDir.is_run(path):
        run = RunDir(path)
        if run.model_dir.is_dir():
            return run.model_dir / "config.json"
        return resolve_model(run.read_config()["model"]["name_or_path"]) / "config.json"
    return resolve_model(path) / "config.json"


def model_type_of(path: str) -> str:
    return json.loads(model_config_path(path).read_text(encoding="utf-8")).get("model_type", "unknown")


OUTPUTS = {"classification": "logits", "encoder": "last_hidden_state"}  # the output an encoder export keeps
GENERATING = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")  # architectures that write text


def source_kind(path: str) -> str:
    """What the model computes: causal (it writes text), classification (a classification run's
    labels) or encoder (a plain model that is no text generator: hidden states, for embeddings);
    another task's run gives its task name (qa, seq2seq...)."""
    if RunDir.is_run(path):
        from tunesmith.tasks import TASKS

        task = RunDir(path).read_config().get("task", {}).get("name", "sft")
        model_class = TASKS.get(task).model_class().__name__
        if model_class == "AutoModelForCausalLM":
            return "causal"
        return "classification" if task == "classification" else task  # reward, qa, seq2seq: their own heads
    config = json.loads(model_config_path(path).read_text(encoding="utf-8"))
    archs = config.get("architectures") or []
    return "causal" if any(a.endswith(GENERATING) for a in archs) or not archs else "encoder"


@dataclass
class Source:
    path: str
    loaded: Loaded
    run: RunDir | None
    eval_features: list[dict] = field(default_factory=list)
    eval_note: str = ""
    kind: str = "causal"  # source_kind(path)
    _merged: object = None

    @property
    def tokenizer(self):
        return self.loaded.tokenizer

    @property
    def config(self):
        return self.loaded.config

    def prompt_ids(self) -> list[list[int]]:
        from tunesmith.tasks.sft import with_system

        tok, system = self.tokenizer, self.config.data.system
        texts = [self.loaded.template.prompt(with_system([{"role": "user", "content": p}], system), tok)
                 for p in PROMPTS]
        return [tok(t, add_special_tokens=False)["input_ids"] for t in texts]

    def prompt_batches(self) -> list[dict]:
        """Encoders: each fixed prompt as plain text, tokenized alone (the tokenizer's own inputs)."""
        return [dict(self.tokenizer(p, return_tensors="pt")) for p in PROMPTS]

    def prompt_batch(self) -> dict:
        """Encoders: all fixed prompts in one right-padded batch."""
        return dict(self.tokenizer(PROMPTS, return_tensors="pt", padding=True))

    def collator(self):
        from tunesmith.tasks import TASKS

        return TASKS.get(self.config.task.name).collator(self.tokenizer)

    def merged_model(self):
        """The adapter folded into the base (PEFT merge_and_unload), computed once, in place."""
        if self._merged is None:
            model = self.loaded.model
            if hasattr(model, "merge_and_unload"):
                model = model.merge_and_unload()
            self._merged = model.eval()
            self.loaded.model = self._merged
        return self._merged

    def save_merged(self, out_dir: Path) -> None:
        """safetensors + tokenizer, with the run's chat template baked in for other runtimes."""
        self.merged_model().save_pretrained(out_dir)
        self.save_tokenizer(out_dir)

    def save_tokenizer(self, out_dir: Path) -> None:
        from tunesmith.export.chat_template import template_for_export

        tokenizer = self.tokenizer
        jinja = template_for_export(self.loaded.template, tokenizer, self.config.data.system)
        if jinja:
            tokenizer.chat_template = jinja
        tokenizer.save_pretrained(out_dir)


def load_source(path: str, data: str | None = None, max_eval_rows: int = 200) -> Source:
    kind = source_kind(path)
    loaded = _load_encoder(path) if kind == "encoder" else load_for_inference(path)
    run = RunDir(path) if RunDir.is_run(path) else None
    source = Source(path, loaded, run, kind=kind)
    if kind != "causal":  # eval loss is a causal LM's figure; an encoder export is checked by parity
        source.eval_note = "not a causal LM: checked by parity of its outputs with PyTorch, no eval loss"
        return source
    try:
        source.eval_features = _eval_features(source, data)[:max_eval_rows]
    except TunesmithError as err:  # the run's data moved: export still works, quality is unknown
        source.eval_note = f"eval set unavailable: {err}"
    if not source.eval_features and not source.eval_note:
        source.eval_note = "no eval set (pass --data FILE to measure quality)"
    return source


def _load_encoder(path: str) -> Loaded:
    """A plain encoder model (no head), as the server loads it for embeddings."""
    from transformers import AutoModel

    from tunesmith.config.load import validate_config
    from tunesmith.models import load_model, load_tokenizer

    model_dir = resolve_model(path)
    config = validate_config({"model": {"name_or_path": path}})
    return Loaded(load_model(model_dir, AutoModel).eval(), load_tokenizer(model_dir), None, config)


def _eval_features(source: Source, data: str | None) -> list[dict]:
    from tunesmith.data.load import load_records
    from tunesmith.data.records import require_rows
    from tunesmith.tasks import TASKS

    config, task = source.config, TASKS.get(source.config.task.name)
    if data is None and source.run is not None:
        from tunesmith.data.prepare import prepare_data

        return prepare_data(config, source.tokenizer, task).eval
    if data is None:
        return []
    records, _ = load_records([data], config.data.format, config.data.on_bad_row)
    features, _ = task.build_features(require_rows(records, data), source.tokenizer, config)
    return features
