"""A Linear layer with int8 weights per output channel and fp32/bf16 activations (models/int8.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class WeightOnlyInt8Linear(torch.nn.Module):
    """y = x W^T + b, W stored as int8 per output channel (symmetric: scale = max |row| / 127).

    x is computed in `activations` (fp32 or bf16) and never quantized, so the only error is the
    weights' rounding. With bf16 activations the product is torch's `_weight_int8pack_mm` (the CPU
    kernel torchao's int8 weight-only quantization uses), faster than fp32 for one token at a time
    here; with fp32 activations (or without that kernel) the weights are dequantized for the call,
    which measured 30-50x faster than the kernel's fp32 path on this AVX2 CPU.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool, activations: str = "fp32"):
        super().__init__()
        self.in_features, self.out_features, self.activations = in_features, out_features, activations
        self.register_buffer("weight_int8", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(out_features))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)

    @classmethod
    def from_linear(cls, linear: torch.nn.Linear, activations: str = "fp32") -> WeightOnlyInt8Linear:
        module = cls(linear.in_features, linear.out_features, linear.bias is not None, activations)
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(1).clamp(min=1e-12) / 127
        module.weight_int8.copy_(torch.round(weight / scale[:, None]).clamp(-127, 127))
        module.weight_scale.copy_(scale)
        if linear.bias is not None:
            module.bias.copy_(linear.bias.detach())
        return module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = torch.bfloat16 if self.activations == "bf16" else torch.float32
        flat = x.reshape(-1, self.in_features).to(dtype).contiguous()
        scale = self.weight_scale.to(dtype)
        y = None
        if dtype == torch.bfloat16:
            try:
                y = torch._weight_int8pack_mm(flat, self.weight_int8, scale)
            except (RuntimeError, NotImplementedError):  # a device without the kernel
                pass
        if y is None:  # fp32: the int8 kernel ran 30-50x slower than dequantizing here (AVX2 CPU)
            y = F.linear(flat, self.weight_int8.to(dtype) * scale[:, None])
        if self.bias is not None:
            y = y + self.bias.to(dtype)
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, int8 weights, {self.activations} activations"
