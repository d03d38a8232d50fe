"""Linear layers through oneDNN for CPU inference: the same float32 products at the CPU's full vector width.

On a CPU, PyTorch computes `nn.Linear` with MKL's sgemm. MKL picks its code
path by CPU vendor and stays on AVX2 on AMD processors (EPYC, common in
cloud and cluster nodes) even where they have AVX-512. oneDNN, PyTorch's
other CPU library, dispatches on the instruction set alone. On an AMD EPYC
with AVX-512, oneDNN runs the encoders' products (such as [8000, 384] x
[384, 1536]) about 1.8x faster than MKL's AVX2 path, and the default model
scores in about 30% less time, on one thread or in calls side by side
(`benchmarks/README.md`). Both compute in float32 (their errors against
float64 are of one order), so a score moves by float rounding only (at most
3e-5 over the long-file benchmark's utterances). On Intel CPUs, where MKL
takes its AVX-512 path, the gain is unmeasured.

`use_onednn_linears` swaps a model's `nn.Linear` modules for `OneDNNLinear`,
which shares their weights and calls oneDNN's linear
(`torch.ops.mkldnn._linear_pointwise`, which PyTorch's own compiler uses for
CPU linears it fuses). The kernel has no backward: where gradients are
wanted, `OneDNNLinear` computes as `nn.Linear` does. Only on x86-64, where
oneDNN's kernels are the ones measured; where this PyTorch has no such
kernel, or it does not give `nn.Linear`'s result, the model is left as it is.
"""

from __future__ import annotations

import platform

import torch
from torch import nn


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`nn.functional.linear` computed by oneDNN."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class OneDNNLinear(nn.Module):
    """`nn.Linear`'s forward through oneDNN, on the same weight and bias tensors."""

    def __init__(self, dense: nn.Linear) -> None:
        super().__init__()
        self.weight, self.bias = dense.weight, dense.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return nn.functional.linear(x, self.weight, self.bias)
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}, bias={self.bias is not None}"


def onednn_linear_works() -> bool:
    """Whether this PyTorch has oneDNN's linear and it agrees with `nn.Linear` (on a 3-D input, as in encoders)."""
    if platform.machine().lower() not in ("x86_64", "amd64") or not torch.backends.mkldnn.is_available():
        return False
    generator = torch.Generator().manual_seed(0)
    weight, bias, x = (torch.randn(*shape, generator=generator) for shape in ((48, 64), (48,), (2, 5, 64)))
    try:
        with torch.inference_mode():
            return torch.allclose(linear(x, weight, bias), nn.functional.linear(x, weight, bias), rtol=1e-4, atol=1e-4)
    except (RuntimeError, AttributeError, TypeError):  # no such op, or another signature in this version
        return False


def use_onednn_linears(model: nn.Module) -> int:
    """Swap every plain `nn.Linear` in `model` (on a CPU) for a `OneDNNLinear`; return how many were swapped.

    Subclasses are left alone: `nn.MultiheadAttention` reads its output
    projection's weights without calling it.
    """
    if not onednn_linear_works():
        return 0
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear and child.weight.device.type == "cpu":
                setattr(parent, name, OneDNNLinear(child))
                swapped += 1
    return swapped
