"""fp32 matrix products through oneDNN on the CPU, for the sampler's per-character step.

torch's own CPU matmul goes through MKL, which on this project's AMD processor (Zen 5) runs at
about 180-200 GFLOP/s on 2 cores, while oneDNN, the library behind torch's CPU LSTM, reaches
about 470 on the same shapes (benchmarks/bench_train.py prints both). torch reaches oneDNN's
fp32 inner product only through the ops it registers for its own compiler (`torch.ops.mkldnn`);
they are not a public API, so `available()` checks once that they exist and agree with
`torch.mm`, and callers fall back to torch's matmul when they do not.
"""

from __future__ import annotations

import functools

import torch


@functools.cache
def available() -> bool:
    """Whether oneDNN's fp32 inner product can be called here and computes what torch.mm does."""
    try:
        x, w = torch.randn(3, 5), torch.randn(4, 5)
        product = linear(x, pack(w, batch=3))
    except (AttributeError, RuntimeError):
        return False
    return bool(torch.allclose(product, x @ w.t(), rtol=1e-4, atol=1e-5))


def pack(weight: torch.Tensor, batch: int) -> torch.Tensor:
    """`weight` (out_features, in_features), reordered once into oneDNN's layout for products with
    `batch` rows (the layout depends on it); the result is only for `linear`."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), batch)


def linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x @ weight.T (+ bias), a new tensor; `packed` comes from `pack`."""
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
