"""One contract over every registered method: adding a method to the registry adds it here.

For each (model kind, method): a few optimizer steps on a fixed batch lower the loss; exactly the
trainable parameters change (frozen ones stay bitwise equal); the saved run reloads with the same
logits; mergeable methods merge without changing logits and the merged model loads with plain
transformers; PEFT adapters load with plain `PeftModel.from_pretrained`.

MODEL_KINDS is the parametrisation point for model kinds: a causal-LM tiny llama, and tiny BERTs
with a sequence-classification and a question-answering head, and a tiny T5 (seq2seq). A method
that does not list a kind's head in its `heads` must refuse that task with one clear error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from tunesmith.config import validate_config
from tunesmith.errors import ConfigError
from tunesmith.methods import METHODS
from tunesmith.tasks import TASKS
from tunesmith.training.runner import train

MERGE_ATOL = 1e-4
RELOAD_ATOL = 1e-5  # PiSSA/OLoRA reload as converted plain LoRA: equal up to float rounding


@dataclass(frozen=True)
class ModelKind:
    name: str
    make_model_dir: Callable[[Path], Path]  # writes a tiny model + tokenizer, returns its dir
    write_data: Callable[[Path], Path]  # writes a 4-row training file, returns it
    task: dict  # the run config's task section
    auto_class: str  # transformers Auto class a plain user would load the merged model with
    inputs: dict  # fixed model inputs whose logits are compared
    scores: Callable = lambda output: output.logits  # the compared tensor of a model output


def _chat_rows(path: Path) -> Path:
    rows = [{"messages": [{"role": "user", "content": f"what is {i} plus {i}?"},
                          {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]}
            for i in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _tiny_llama_dir(path: Path) -> Path:
    from tiny import save_tiny_llama

    return save_tiny_llama(path)


def _tiny_bert_dir(path: Path) -> Path:
    from tiny_tasks import save_tiny_bert

    return save_tiny_bert(path)


def _tiny_t5_dir(path: Path) -> Path:
    from tiny_tasks import save_tiny_t5

    return save_tiny_t5(path)


def _sentiment_rows(path: Path) -> Path:
    from tiny_tasks import sentiment_rows, write_tsv

    return write_tsv(path.with_suffix(".tsv"), ["sentence", "label"], sentiment_rows(4))


def _qa_rows(path: Path) -> Path:
    rows = []
    for name in ("fox", "dog", "cat", "owl"):
        context = f"the quick brown {name} jumps over the lazy wall."
        rows.append({"question": "who jumps?", "context": context,
                     "answers": {"text": [name], "answer_start": [context.index(name)]}})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _seq2seq_rows(path: Path) -> Path:
    rows = [{"source": f"what is {i} plus {i}?", "target": f"{i} plus {i} is {2 * i}."} for i in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


IDS = torch.tensor([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 15, 16]])
MODEL_KINDS = [
    ModelKind("causal-lm", _tiny_llama_dir, _chat_rows, {"name": "sft"}, "AutoModelForCausalLM",
              {"input_ids": IDS}, lambda output: output.logits[:, -IDS.shape[1]:]),  # after any virtual tokens
    ModelKind("seq-cls", _tiny_bert_dir, _sentiment_rows,
              {"name": "classification", "text_column": "sentence"},
              "AutoModelForSequenceClassification", {"input_ids": IDS}),
    ModelKind("qa", _tiny_bert_dir, _qa_rows, {"name": "qa"}, "AutoModelForQuestionAnswering",
              {"input_ids": IDS}, lambda output: torch.stack([output.start_logits, output.end_logits])),
    ModelKind("seq2seq", _tiny_t5_dir, _seq2seq_rows, {"name": "seq2seq"}, "AutoModelForSeq2SeqLM",
              {"input_ids": IDS, "decoder_input_ids": IDS[:, :3]}),
]


class Snapshot(TrainerCallback):
    """Parameters as training starts, and the trained model at the end."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.before = {n: p.detach().clone() for n, p in model.named_parameters()}
        self.trainable = {n for n, p in model.named_parameters() if p.requires_grad}

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.model = model


@dataclass
class Trained:
    kind: ModelKind
    spec: object
    model_dir: Path
    run_dir: Path
    snapshot: Snapshot

    def logits(self, model) -> torch.Tensor:
        """Logits at the input positions (prompt-learning methods prepend virtual tokens)."""
        with torch.no_grad():
            return self.kind.scores(model.eval()(**self.kind.inputs))

    def base(self):
        import transformers

        return getattr(transformers, self.kind.auto_class).from_pretrained(self.model_dir)


@pytest.fixture(scope="module", params=MODEL_KINDS, ids=lambda k: k.name)
def kind_dirs(request, tmp_path_factory):
    kind = request.param
    root = tmp_path_factory.mktemp(kind.name)
    return kind, kind.make_model_dir(root / "model"), kind.write_data(root / "train.jsonl")


# LoRA+ trains B at lr_ratio (16) times the learning rate: at 1e-2, B's 0.16 overshoots on the tiny
# classifier and the loss oscillates instead of falling.
LEARNING_RATES = {"loraplus": 2.5e-3}


@pytest.fixture(scope="module", params=METHODS.names())
def trained(request, kind_dirs, tmp_path_factory) -> Trained:
    kind, model_dir, data = kind_dirs
    spec = METHODS.get(request.param)
    config = validate_config({
        "model": {"name_or_path": str(model_dir)},
        "data": {"train": [str(data)], "template": "chatml"},
        "method": {"name": spec.name},
        "task": kind.task,
        "train": {"max_steps": 8, "batch_size": 4, "learning_rate": LEARNING_RATES.get(spec.name, 1e-2),
                  "logging_steps": 1,
                  "save_steps": 100, "precision": "fp32", "scheduler": "constant",
                  "max_grad_norm": 0, "threads": 1},
        "eval": {"before_training": False},
        "output": {"dir": str(tmp_path_factory.mktemp(spec.name) / "run")},
    })
    reason = spec.refusal(TASKS.get(kind.task["name"]))
    if reason:  # the contract here: a clear error before any work, never a crash later
        with pytest.raises(ConfigError) as err:
            train(config)
        assert str(err.value) == reason
        pytest.skip(f"{spec.name} refuses {kind.name} here: {reason}")
    snapshot = Snapshot()
    result = train(config, callbacks=(snapshot,))
    assert result.status == "succeeded"
    return Trained(kind, spec, model_dir, result.run_dir, snapshot)


def test_a_few_steps_lower_the_loss(trained):
    rows = [json.loads(line) for line in (trained.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 8
    assert losses[-1] < losses[0], losses


def test_exactly_the_trainable_parameters_change(trained):
    snap = trained.snapshot
    after = dict(snap.model.named_parameters())
    assert snap.trainable, "nothing trains"
    assert set(after) == set(snap.before)
    unchanged = [n for n in snap.trainable if torch.equal(snap.before[n], after[n])]
    assert not unchanged, f"trainable but unchanged: {unchanged[:5]}"
    moved = [n for n in set(snap.before) - snap.trainable if not torch.equal(snap.before[n], after[n])]
    assert not moved, f"frozen but changed: {moved[:5]}"


def test_saved_run_reloads_with_the_same_logits(trained):
    from tunesmith.inference.load import load_for_inference

    trained_logits = trained.logits(trained.snapshot.model)
    loaded = load_for_inference(str(trained.run_dir))
    torch.testing.assert_close(trained.logits(loaded.model), trained_logits, atol=RELOAD_ATOL, rtol=0)
    if trained.spec.saves_adapter:  # and the adapter is not a no-op
        assert not torch.allclose(trained.logits(trained.base()), trained_logits, atol=1e-4)


def test_merged_model_matches_and_loads_with_plain_transformers(trained, tmp_path):
    if not trained.spec.mergeable:
        pytest.skip(f"{trained.spec.name} is not mergeable")
    from tunesmith.inference.load import load_for_inference

    model = load_for_inference(str(trained.run_dir)).model
    unmerged = trained.logits(model)
    merged = model.merge_and_unload()
    torch.testing.assert_close(trained.logits(merged), unmerged, atol=MERGE_ATOL, rtol=0)
    merged.save_pretrained(tmp_path / "merged")
    import transformers

    plain = getattr(transformers, trained.kind.auto_class).from_pretrained(tmp_path / "merged")
    assert not any("lora" in n for n, _ in plain.named_parameters())
    torch.testing.assert_close(trained.logits(plain), unmerged, atol=MERGE_ATOL, rtol=0)


def test_peft_adapter_loads_with_plain_peft(trained):
    if not trained.spec.peft:
        pytest.skip(f"{trained.spec.name} does not save a PEFT adapter")
    from peft import PeftModel

    model = PeftModel.from_pretrained(trained.base(), trained.run_dir / "adapter")
    torch.testing.assert_close(trained.logits(model), trained.logits(trained.snapshot.model),
                               atol=RELOAD_ATOL, rtol=0)
