"""One contract over every registered exporter: adding an exporter to EXPORTERS adds it here.

Each exporter writes a tiny trained LoRA run (tiny llama) with its default options. For every
exporter: the files it lists are in the folder it was given; the artifact it loads back from
disk answers the same input with logits of the same shape, within the exporter's declared
tolerance of the unexported model (a lossy format declares none and must stay finite and
recognisably close), with the same greedy continuation when it promises one. Exporters slower
than a few seconds on a tiny model are marked slow (SLOW below); the rest stay in the fast suite.
"""

from __future__ import annotations

import json

import pytest
import torch

from tunesmith.export import EXPORTERS

SLOW = {"onnx"}  # torch.onnx tracing + onnxruntime session: ~10 s even for a tiny model
IDS = torch.tensor([[5, 6, 7, 8, 9, 10, 11], [12, 13, 14, 15, 16, 17, 18]])
LOSSY_CLOSE = 0.5  # a lossy export of a tiny model stays within this of the source's logits


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tmp_path_factory):
    from tunesmith.config import validate_config
    from tunesmith.training import runner

    folder = tmp_path_factory.mktemp("exporters")
    rows = [{"messages": [{"role": "user", "content": f"what is {i} plus {i}?"},
                          {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]} for i in range(4)]
    (folder / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = validate_config({
        "model": {"name_or_path": str(tiny_model_dir)},
        "data": {"train": [str(folder / "chat.jsonl")], "template": "chatml"},
        "method": {"name": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
        "train": {"max_steps": 2, "batch_size": 4, "learning_rate": 1e-2, "precision": "fp32", "threads": 1},
        "eval": {"before_training": False},
        "output": {"dir": str(folder / "run")},
    })
    return runner.train(config).run_dir


@pytest.fixture(scope="module")
def reference(run_dir):
    """The unexported model's logits and greedy continuation (loaded on its own: exporters may
    merge the source's adapter in place)."""
    from tunesmith.export.runtime import TorchRuntime
    from tunesmith.inference.load import load_for_inference

    loaded = load_for_inference(str(run_dir))
    runtime = TorchRuntime(loaded.model, loaded.tokenizer.pad_token_id)
    return runtime.logits(IDS, torch.ones_like(IDS)), runtime.greedy(IDS[0].tolist(), 6)


def _params():
    return [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name in EXPORTERS.names()]


@pytest.fixture(scope="module", params=_params())
def exported(request, run_dir, tmp_path_factory):
    from tunesmith.export.source import load_source, model_type_of

    spec = EXPORTERS.get(request.param)
    if spec.architectures is not None and model_type_of(str(run_dir)) not in spec.architectures:
        pytest.fail(f"{spec.name} does not take the tiny llama; give the suite a model it takes")
    options = spec.options_class()
    if spec.check:
        spec.check(options, model_type_of(str(run_dir)))
    folder = tmp_path_factory.mktemp(spec.name)
    source = load_source(str(run_dir))
    result = spec.export(source, folder, options)
    return spec, folder, result, source


def test_the_listed_files_are_written_and_loaded_back(exported):
    _, folder, result, source = exported
    assert result.files, "an export lists the files it wrote"
    for name in result.files:
        assert (folder / name).is_file() and (folder / name).stat().st_size > 0, name
    runtime_model = getattr(result.runtime, "model", None)  # None: not a torch runtime (onnxruntime)
    assert runtime_model is None or all(runtime_model is not m for m in (source.loaded.model, source._merged)), \
        "the runtime is the model in memory, not the files loaded back"


def test_loaded_back_it_matches_the_unexported_model(exported, reference):
    _, _, result, _ = exported
    logits, greedy = reference
    theirs = result.runtime.logits(IDS, torch.ones_like(IDS))
    assert theirs.shape == logits.shape and torch.isfinite(theirs).all()
    diff = float((theirs - logits).abs().max())
    assert diff <= (result.logit_tolerance if result.logit_tolerance is not None else LOSSY_CLOSE), diff
    if result.greedy_must_match:
        assert result.runtime.greedy(IDS[0].tolist(), 6) == greedy

