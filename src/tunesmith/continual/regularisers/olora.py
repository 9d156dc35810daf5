"""O-LoRA (Wang et al., 2023): learn the new task in a LoRA subspace orthogonal to the earlier ones.

Training starts from model.from_run's LoRA adapter folded into the base weights (frozen: it never
changes), with a new LoRA adapter beside it (the run's method options). The penalty is
strength * sum over adapted modules of |A_old A_new^T| (L1, entrywise), which drives the new
adapter's input directions away from the earlier tasks'. On save, the earlier and the new adapter
are written as one plain LoRA adapter of rank r_old + r_new for the original base model: the
earlier A and B rows/columns bit for bit, the new B rescaled to the earlier scaling, so the run
loads like any other and the next O-LoRA run sees every earlier subspace.
Extra memory: the earlier adapter's A matrices (r_old x in_features per module). Extra time: one
r_old x r_new product per adapted module per step; folding the earlier adapter in once.
"""

from __future__ import annotations

import json
import math
import weakref
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from tunesmith.config.components import RegulariserConfig
from tunesmith.continual.regularisers import Regulariser, register_regulariser
from tunesmith.errors import ConfigError

if TYPE_CHECKING:
    import torch

WEIGHTS, CONFIG = "adapter_model.safetensors", "adapter_config.json"


class OLoRAConfig(RegulariserConfig):
    name: Literal["o-lora"] = "o-lora"
    strength: float = Field(0.5, ge=0, description="Weight of the orthogonality penalty (lambda_1 of the paper).")


def lora_a(model) -> dict[str, torch.nn.Parameter]:
    """Module name -> the A matrix of its (default) LoRA adapter."""
    return {name: module.lora_A["default"].weight for name, module in model.named_modules()
            if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {})}


def scaling(config: dict, rank: int) -> float:
    alpha = config["lora_alpha"]
    return alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank


@register_regulariser
class OLoRA(Regulariser):
    config_class = OLoRAConfig
    summary = "new LoRA adapter orthogonal to the earlier ones; earlier adapters frozen and kept"
    memory = "the earlier adapter's A matrices (r_old x in_features per adapted module)"
    time = "one r_old x r_new matrix product per adapted module per step"
    new_adapter = True

    def __init__(self):
        self._old_a = weakref.WeakKeyDictionary()  # trained model -> the earlier adapter's A per module

    def start(self, model, earlier, config, method):
        from peft import PeftModel

        if not (earlier.adapter_dir / CONFIG).is_file():
            raise ConfigError(f"train.regulariser: o-lora needs model.from_run to be a LoRA run; "
                              f"{earlier.path} has no adapter/")
        old = PeftModel.from_pretrained(model, str(earlier.adapter_dir))
        old_a = {name: a.detach().clone() for name, a in lora_a(old).items()}
        new = method.apply(old.merge_and_unload(), config.method)
        if not lora_a(new):
            raise ConfigError(f"train.regulariser: o-lora needs a LoRA method (lora, rslora ...), "
                              f"not {config.method.name}")
        self._old_a[new] = old_a
        return new

    def anchor(self, model, cfg: OLoRAConfig, context):
        old_a = self._old_a[model]
        pairs = [(old_a[name], a) for name, a in lora_a(model).items() if name in old_a]

        def penalty(model):
            return cfg.strength * sum((old @ new.T).abs().sum() for old, new in pairs)

        return penalty

    def save(self, model, directory, earlier) -> None:
        combine_adapters(earlier.adapter_dir, directory)


def combine_adapters(old_dir, new_dir) -> None:
    """Rewrite the new adapter in `new_dir` as earlier + new in one LoRA of rank r_old + r_new."""
    import torch
    from safetensors.torch import load_file, save_file

    from tunesmith.utils.io import atomic_path, write_json

    old_cfg = json.loads((old_dir / CONFIG).read_text())
    new_cfg = json.loads((new_dir / CONFIG).read_text())
    if old_cfg.get("rank_pattern") or new_cfg.get("rank_pattern") or new_cfg.get("use_dora"):
        raise ConfigError("train.regulariser: o-lora combines plain LoRA adapters only (no rank_pattern, no DoRA)")
    old, new = load_file(str(old_dir / WEIGHTS)), load_file(str(new_dir / WEIGHTS))
    r_old, r_new = old_cfg["r"], new_cfg["r"]
    s_old, s_new = scaling(old_cfg, r_old), scaling(new_cfg, r_new)
    combined = {}
    for key in sorted(set(old) | set(new)):
        if ".lora_A." in key:
            a_old, a_new = _or_zeros(old, new, key, 0, r_old, r_new)
            combined[key] = torch.cat([a_old, a_new], 0)
        elif ".lora_B." in key:
            b_old, b_new = _or_zeros(old, new, key, 1, r_old, r_new)
            combined[key] = torch.cat([b_old, b_new * (s_new / s_old)], 1)
        else:
            combined[key] = new.get(key, old.get(key))
    rank = r_old + r_new
    targets = sorted(set(_list(old_cfg["target_modules"])) | set(_list(new_cfg["target_modules"])))
    alpha = s_old * (math.sqrt(rank) if old_cfg.get("use_rslora") else rank)
    with atomic_path(new_dir / WEIGHTS) as tmp:
        save_file(combined, str(tmp), metadata={"format": "pt"})
    write_json(new_dir / CONFIG, {**new_cfg, "r": rank, "lora_alpha": alpha, "target_modules": targets,
                                  "use_rslora": bool(old_cfg.get("use_rslora"))})


def _or_zeros(old: dict, new: dict, key: str, dim: int, r_old: int, r_new: int):
    """Both halves of a LoRA matrix; zeros where one adapter does not adapt this module."""
    import torch

    some = old.get(key, new.get(key))
    shape = list(some.shape)

    def zeros(rank):
        shape[dim] = rank
        return torch.zeros(shape, dtype=some.dtype)

    return old.get(key, zeros(r_old)), new.get(key, zeros(r_new))


def _list(targets) -> list[str]:
    return [targets] if isinstance(targets, str) else list(targets)
