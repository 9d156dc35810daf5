"""A dynamic-int8 model on disk: int8 weights with per-channel scales in safetensors (no pickle).

torch's quantized modules hold their weights as packed C++ objects that safetensors cannot
store and `save_pretrained` does not know, so we write the int8 values, scales and zero
points as plain tensors and rebuild the quantized modules on load.
"""

from __future__ import annotations

import json
from pathlib import Path

INT8_WEIGHTS = "model.int8.safetensors"
INT8_MANIFEST = "int8_quantization.json"


def quantize_int8(model):
    """torch dynamic quantization of every nn.Linear (int8 weights, per output channel)."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    return quantize_dynamic(model.eval(), {torch.nn.Linear: per_channel_dynamic_qconfig}, inplace=False)


def _quantized_modules(model) -> dict:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return {name: m for name, m in model.named_modules() if isinstance(m, DynamicLinear)}


def save_int8(model, folder: Path) -> list[str]:
    """Write a model returned by `quantize_int8` (its config must already be in `folder`)."""
    import torch
    from safetensors.torch import save_file

    tensors, quantized = {}, _quantized_modules(model)
    for name, module in quantized.items():
        weight, bias = module._weight_bias()
        tensors[f"{name}.weight_int8"] = weight.int_repr().contiguous()
        tensors[f"{name}.weight_scale"] = weight.q_per_channel_scales().float().contiguous()
        tensors[f"{name}.weight_zero_point"] = weight.q_per_channel_zero_points().contiguous()
        if bias is not None:
            tensors[f"{name}.bias"] = bias.detach().contiguous()
    for key, value in model.state_dict().items():
        if isinstance(value, torch.Tensor) and not key.startswith(tuple(f"{n}." for n in quantized)):
            tensors[key] = value.detach().contiguous().clone()
    save_file(tensors, folder / INT8_WEIGHTS)
    (folder / INT8_MANIFEST).write_text(json.dumps(
        {"method": "torch dynamic quantization", "dtype": "qint8", "scheme": "per_channel_affine",
         "modules": sorted(quantized)}, indent=2) + "\n", encoding="utf-8")
    return [INT8_WEIGHTS, INT8_MANIFEST]


def is_int8_dir(folder: Path) -> bool:
    return (Path(folder) / INT8_WEIGHTS).is_file()


def load_int8(folder: Path, model_class=None, trust_remote_code: bool = False):
    """Rebuild the architecture, quantize it the same way, then put the stored weights in."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.initialization import no_init_weights

    config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
    with no_init_weights():  # every weight is overwritten below; random init would only cost time
        model = (model_class or AutoModelForCausalLM).from_config(config, trust_remote_code=trust_remote_code)
    model = quantize_int8(model)
    tensors = load_file(Path(folder) / INT8_WEIGHTS)
    for name, module in _quantized_modules(model).items():
        # _make_per_channel_quantized_tensor rebuilds the exact stored int8 values (no re-rounding).
        weight = torch._make_per_channel_quantized_tensor(
            tensors.pop(f"{name}.weight_int8"), tensors.pop(f"{name}.weight_scale").double(),
            tensors.pop(f"{name}.weight_zero_point"), 0)
        module.set_weight_bias(weight, tensors.pop(f"{name}.bias", None))
    # load_state_dict would ask the quantized modules for keys we do not store, so copy by name.
    quantized_keys = tuple(f"{n}." for n in _quantized_modules(model))
    expected = {k for k, v in model.state_dict().items()
                if isinstance(v, torch.Tensor) and not k.startswith(quantized_keys)}
    if expected != set(tensors):
        raise ValueError(f"{folder}: int8 weights do not match the config (missing "
                         f"{sorted(expected - set(tensors))[:3]}, unexpected {sorted(set(tensors) - expected)[:3]})")
    with torch.no_grad():
        for key, value in tensors.items():
            _tensor(model, key).copy_(value)
    return model.eval()


def _tensor(model, key: str):
    module_name, _, attr = key.rpartition(".")
    return getattr(model.get_submodule(module_name), attr)
