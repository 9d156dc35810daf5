"""pruned: magnitude pruning to a target sparsity, optionally followed by a recovery fine-tune.

unstructured: the smallest-|w| share of every decoder Linear is zeroed (torch.nn.utils.prune,
per layer). The file stays dense; the zeros pay off in a sparse runtime or after compression.
heads / channels: whole attention heads or MLP channels are removed (see structured.py), so
the saved model is genuinely smaller and faster.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from tunesmith.export import ExportError, ExportOptions, ExportResult, register_exporter
from tunesmith.export.merged import weight_files
from tunesmith.export.structured import STRUCTURED_ARCHITECTURES, prune_channels, prune_heads


class PruneOptions(ExportOptions):
    sparsity: float = Field(0.5, gt=0, lt=1, description="Share of weights (or heads/channels) removed.")
    structure: Literal["unstructured", "heads", "channels"] = Field("unstructured", description="What is removed.")
    recover_steps: int = Field(0, ge=0, description="Fine-tune steps on the run's data after pruning.")


def _check(options: PruneOptions, model_type: str) -> None:
    if options.structure != "unstructured" and model_type not in STRUCTURED_ARCHITECTURES:
        raise ExportError(f"pruned: --structure {options.structure} supports {', '.join(STRUCTURED_ARCHITECTURES)} "
                          f"models, not {model_type!r}; use --structure unstructured")


@register_exporter("pruned", "Magnitude pruning (unstructured, or whole attention heads / MLP channels) "
                   "to a target sparsity, with an optional recovery fine-tune.", options=PruneOptions,
                   folder_name=lambda o: f"pruned-{o.structure}-{o.sparsity:g}", check=_check)
def export_pruned(source, out_dir: Path, options: PruneOptions) -> ExportResult:
    from transformers import AutoModelForCausalLM

    from tunesmith.export.runtime import TorchRuntime

    model = source.merged_model()
    before = _linear_weights(model)
    masks, details = _prune(model, options)
    if options.recover_steps:
        model, details["recovery"] = _recover(source, model, masks, options.recover_steps)
    details = {**_sparsity(model, before), **details}
    model.save_pretrained(out_dir)
    source.save_tokenizer(out_dir)
    start = time.perf_counter()
    loaded = AutoModelForCausalLM.from_pretrained(out_dir)
    seconds = time.perf_counter() - start
    return ExportResult(TorchRuntime(loaded, source.tokenizer.pad_token_id), seconds,
                        weight_files(out_dir), details={"structure": options.structure, **details})


def _decoder_linears(model):
    import torch

    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and ".layers." in f".{n}"]


def _linear_weights(model) -> int:
    return sum(m.weight.numel() for _, m in _decoder_linears(model))


def _prune(model, options: PruneOptions) -> tuple[dict, dict]:
    """Prune in place; returns the unstructured masks (to keep after recovery) and details."""
    if options.structure == "heads":
        return {}, prune_heads(model, options.sparsity)
    if options.structure == "channels":
        return {}, prune_channels(model, options.sparsity)
    from torch.nn.utils import prune

    masks = {}
    for name, module in _decoder_linears(model):
        prune.l1_unstructured(module, "weight", amount=options.sparsity)
        prune.remove(module, "weight")  # make it permanent: a plain weight with zeros
        masks[name] = module.weight.data != 0
    return masks, {}


def _sparsity(model, weights_before: int) -> dict:
    linears = _decoder_linears(model)
    kept = sum(int((m.weight != 0).sum()) for _, m in linears)
    return {"decoder_linear_weights_before": weights_before,
            "decoder_linear_nonzero_after": kept,
            # for heads/channels this is overridden by the share of heads/channels removed
            "achieved_sparsity": round(1 - kept / weights_before, 4),
            "decoder_linear_sparsity": round(1 - kept / weights_before, 4),
            "parameters_after": sum(p.numel() for p in model.parameters())}


def _recover(source, model, masks: dict, steps: int):
    """A short fine-tune with the run's own config and data (tunesmith.training), then merge.

    Unstructured zeros are put back afterwards: the update is small and dense, so re-applying
    the mask keeps the target sparsity at little cost to the recovered loss."""
    import torch

    from tunesmith.inference.load import load_for_inference
    from tunesmith.training.runner import train

    if source.run is None:
        raise ExportError("pruned: --recover-steps needs a run directory (its config and data), not a model")
    with tempfile.TemporaryDirectory(prefix="tunesmith-recover-") as tmp:
        model.save_pretrained(Path(tmp) / "pruned")
        source.save_tokenizer(Path(tmp) / "pruned")
        config = source.config.model_copy(deep=True)
        config.model.name_or_path = str(Path(tmp) / "pruned")
        config.train.max_steps, config.train.save_steps = steps, steps
        config.eval.before_training, config.eval.early_stopping_patience = True, None
        config.output.dir, config.output.overwrite = str(Path(tmp) / "run"), True
        result = train(config)
        recovered = load_for_inference(str(result.run_dir)).model
        recovered = recovered.merge_and_unload() if hasattr(recovered, "merge_and_unload") else recovered
    with torch.no_grad():
        for name, module in _decoder_linears(recovered):
            if name in masks:
                module.weight.mul_(masks[name])
    return recovered.eval(), {"steps": steps, "eval_loss_before": result.eval_before.get("eval_loss"),
                              "eval_loss_after": result.eval_after.get("eval_loss")}
