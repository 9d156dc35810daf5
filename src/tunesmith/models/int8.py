"""int8 models on disk: int8 weights with per-channel scales in safetensors (no pickle).

Two kinds, both int8 per output channel in every nn.Linear:
- weight-only (the default): activations stay fp32 (or bf16), so the only error is the weights'
  rounding; the matmul is torch's `_weight_int8pack_mm`, the CPU kernel torchao's int8
  weight-only quantization dispatches to. Written here rather than with torchao: torchao's
  quantized weights are tensor subclasses that safetensors cannot store (saving them needs
  pickle), and rebuilding them from plain tensors means torchao's internal constructors; a
  dozen lines of module keep the file format plain int8 + scales.
- dynamic: torch dynamic quantization, activations quantized to int8 on the fly at each call
  (faster on some CPUs, but it costs quality). torch's quantized modules hold their weights as
  packed C++ objects that safetensors cannot store, so we write the int8 values, scales and zero
  points as plain tensors and rebuild the quantized modules on load.
"""

from __future__ import annotations

import json
from pathlib import Path

INT8_WEIGHTS = "model.int8.safetensors"
INT8_MANIFEST = "int8_quantization.json"


WEIGHT_ONLY, DYNAMIC = "weight-only", "dynamic"
_METHODS = {WEIGHT_ONLY: "weight-only int8", DYNAMIC: "torch dynamic quantization"}


def quantize_int8(model, mode: str = DYNAMIC, activations: str = "fp32"):
    """int8 weights per output channel in every nn.Linear: `weight-only` (activations in fp32/bf16)
    or `dynamic` (torch dynamic quantization: activations quantized on the fly)."""
    import copy

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    if mode == DYNAMIC:
        return quantize_dynamic(model.eval(), {torch.nn.Linear: per_channel_dynamic_qconfig}, inplace=False)
    from tunesmith.models.int8_linear import WeightOnlyInt8Linear

    model = copy.deepcopy(model).eval()
    for name, module in list(model.named_modules()):
        if type(module) is torch.nn.Linear:
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr,
                    WeightOnlyInt8Linear.from_linear(module, activations))
    return model


def quantized_modules(model) -> dict:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    from tunesmith.models.int8_linear import WeightOnlyInt8Linear

    kinds = (DynamicLinear, WeightOnlyInt8Linear)
    return {name: m for name, m in model.named_modules() if isinstance(m, kinds)}


def int8_mode(model) -> str:
    from tunesmith.models.int8_linear import WeightOnlyInt8Linear

    return WEIGHT_ONLY if any(isinstance(m, WeightOnlyInt8Linear) for m in model.modules()) else DYNAMIC


def save_int8(model, folder: Path) -> list[str]:
    """Write a model returned by `quantize_int8` (its config must already be in `folder`)."""
    import torch
    from safetensors.torch import save_file

    tensors, quantized, mode = {}, quantized_modules(model), int8_mode(model)
    activations = "fp32"
    for name, module in quantized.items():
        if mode == WEIGHT_ONLY:
            weight, scale, zero, bias = module.weight_int8, module.weight_scale, None, module.bias
            activations = module.activations
        else:
            packed, bias = module._weight_bias()
            weight, scale = packed.int_repr(), packed.q_per_channel_scales().float()
            zero = packed.q_per_channel_zero_points()
        tensors[f"{name}.weight_int8"] = weight.contiguous()
        tensors[f"{name}.weight_scale"] = scale.contiguous()
        if zero is not None:
            tensors[f"{name}.weight_zero_point"] = zero.contiguous()
        if bias is not None:
            tensors[f"{name}.bias"] = bias.detach().contiguous()
    for key, value in model.state_dict().items():
        if isinstance(value, torch.Tensor) and not key.startswith(tuple(f"{n}." for n in quantized)):
            tensors[key] = value.detach().contiguous().clone()
    save_file(tensors, folder / INT8_WEIGHTS)
    scheme = "per_channel_symmetric" if mode == WEIGHT_ONLY else "per_channel_affine"
    manifest = {"method": _METHODS[mode], "dtype": "qint8", "scheme": scheme, "modules": sorted(quantized)}
    if mode == WEIGHT_ONLY:
        manifest["activations"] = activations
    (folder / INT8_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
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
    manifest = json.loads((Path(folder) / INT8_MANIFEST).read_text(encoding="utf-8"))
    mode = WEIGHT_ONLY if manifest.get("method") == _METHODS[WEIGHT_ONLY] else DYNAMIC
    model = quantize_int8(model, mode, manifest.get("activations", "fp32"))
    tensors = load_file(Path(folder) / INT8_WEIGHTS)
    for name, module in quantized_modules(model).items():
        if mode == WEIGHT_ONLY:
            module.weight_int8.copy_(tensors.pop(f"{name}.weight_int8"))
            module.weight_scale.copy_(tensors.pop(f"{name}.weight_scale"))
            if module.bias is not None:
                module.bias.copy_(tensors.pop(f"{name}.bias"))
            continue
        # _make_per_channel_quantized_tensor rebuilds the exact stored int8 values (no re-rounding).
        weight = torch._make_per_channel_quantized_tensor(
            tensors.pop(f"{name}.weight_int8"), tensors.pop(f"{name}.weight_scale").double(),
            tensors.pop(f"{name}.weight_zero_point"), 0)
        module.set_weight_bias(weight, tensors.pop(f"{name}.bias", None))
    # load_state_dict would ask the quantized modules for keys we do not store, so copy by name.
    quantized_keys = tuple(f"{n}." for n in quantized_modules(model))
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
