"""Bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2021): a small down-project,
non-linearity, up-project block with a residual, after the attention and/or feed-forward output.

Why our own module: PEFT has no bottleneck adapters, and AdapterHub's `adapters` (1.3) pins
transformers ~=4.57 while tunesmith runs on transformers 5. The block (models/bottleneck.py)
is a few lines; it is attached with forward hooks so the base model's weight names stay
untouched, and it saves only its own weights (plus any head trained with it) beside a small JSON config in adapter/.
"""

from __future__ import annotations

import json
import re
import weakref
from pathlib import Path
from typing import Literal

from pydantic import Field

from tunesmith.config.components import MethodConfig
from tunesmith.errors import ConfigError, RunDirError
from tunesmith.methods import Method, register_method

CONFIG_FILE = "bottleneck_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
_DECODER = (r".*\.layers\.\d+\.self_attn\.o_proj", r".*\.layers\.\d+\.mlp\.down_proj")
PLACEMENTS = {  # model_type -> (attention output, feed-forward output) module-name regexes
    **dict.fromkeys(["llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3"], _DECODER),
    "bert": (r".*\.layer\.\d+\.attention\.output\.dense", r".*\.layer\.\d+\.output\.dense"),
    "gpt2": (r".*\.h\.\d+\.attn\.c_proj", r".*\.h\.\d+\.mlp\.c_proj"),
}


class BottleneckConfig(MethodConfig):
    name: Literal["bottleneck"] = "bottleneck"
    placement: Literal["pfeiffer", "houlsby"] = Field(
        "pfeiffer", description="pfeiffer: one adapter after each feed-forward block; houlsby: "
        "one after attention and one after feed-forward.")
    reduction_factor: int = Field(16, gt=0, description="Hidden size / bottleneck size (AdapterHub: 16).")
    activation: Literal["relu", "silu", "gelu", "tanh"] | None = Field(
        None, description="Non-linearity (default: relu for pfeiffer, silu for houlsby, as AdapterHub).")
    attention_output: str | None = Field(
        None, description="Regex of the attention output modules (default: known per architecture).")
    ffn_output: str | None = Field(
        None, description="Regex of the feed-forward output modules (default: known per architecture).")


def _targets(model, cfg: BottleneckConfig) -> list[str]:
    model_type = model.config.model_type
    known = PLACEMENTS.get(model_type, (None, None))
    attention, ffn = cfg.attention_output or known[0], cfg.ffn_output or known[1]
    wanted = [ffn] + ([attention] if cfg.placement == "houlsby" else [])
    if None in wanted:
        raise ConfigError(
            f"method bottleneck: no known adapter placement for model_type {model_type!r} "
            f"(known: {', '.join(sorted(PLACEMENTS))}); set method.ffn_output"
            f"{' and method.attention_output' if cfg.placement == 'houlsby' else ''} to module-name regexes")
    names = [n for n, _ in model.named_modules() if any(re.fullmatch(p, n) for p in wanted)]
    if not names:
        raise ConfigError(f"method.ffn_output/attention_output {wanted} match no module of this model")
    return names


def _insert(model, cfg: BottleneckConfig):
    from tunesmith.models.bottleneck import Bottleneck

    for p in model.parameters():
        p.requires_grad_(False)
    modules = dict(model.named_modules())
    activation = cfg.activation or ("relu" if cfg.placement == "pfeiffer" else "silu")
    for name in _targets(model, cfg):
        module = modules[name]
        hidden = getattr(module, "out_features", None) or module.weight.shape[-1]
        module.add_module("bottleneck", Bottleneck(hidden, max(1, hidden // cfg.reduction_factor), activation))
        module.register_forward_hook(lambda m, args, out: m.bottleneck(out))
    if "ForSequenceClassification" in type(model).__name__:  # the new head trains with the adapters
        head = getattr(model, "score", None) or getattr(model, "classifier", None)
        for p in head.parameters() if head is not None else ():
            p.requires_grad_(True)
    return model


@register_method
class BottleneckAdapters(Method):
    config_class = BottleneckConfig
    summary = "bottleneck adapters after attention/FFN (Houlsby, Pfeiffer)"
    mergeable, saves_adapter, peft = False, True, False
    heads = ("causal-lm", "seq-cls", "qa")  # placements are known for decoders and encoders

    def __init__(self):
        self._configs = weakref.WeakKeyDictionary()  # model -> the options it was applied with

    def apply(self, model, cfg: BottleneckConfig):
        self._configs[model] = cfg
        return _insert(model, cfg)

    def save_trained(self, model, directory) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights = {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(weights, directory / WEIGHTS_FILE)
        meta = {"method": self._configs[model].model_dump(mode="json"),
                "base_model_name_or_path": str(getattr(model, "name_or_path", "")),
                "model_type": model.config.model_type}
        (directory / CONFIG_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    def load_adapter(self, base_model, directory):
        from safetensors.torch import load_file

        directory = Path(directory)
        if not (directory / CONFIG_FILE).is_file():
            raise RunDirError(f"{directory} holds no bottleneck adapter ({CONFIG_FILE} missing)")
        meta = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        model = self.apply(base_model, BottleneckConfig.model_validate(meta["method"]))
        weights = load_file(directory / WEIGHTS_FILE)
        params = dict(model.named_parameters())
        missing = sorted(set(weights) - set(params))
        if missing:
            raise RunDirError(f"{directory}: adapter weights do not fit this base model (e.g. {missing[0]})")
        for name, tensor in weights.items():
            params[name].data.copy_(tensor)
        return model
