"""fp32 matrix products through oneDNN on the CPU, for the sampler's per-character step and the
model's output layer.

torch's own CPU matmul goes through MKL, which on this project's AMD processor runs at less than
half the speed of oneDNN, the library behind torch's CPU LSTM, on the same shapes
(benchmarks/bench_train.py prints both). torch reaches oneDNN's
fp32 inner product only through the ops it registers for its own compiler (`torch.ops.mkldnn`);
they are not a public API, so `available()` checks once that they exist and agree with
`torch.mm`, and callers fall back to torch's matmul when they do not.
"""

from __future__ import annotations

import functools

import torch


@functools.cache
def available() -> bool:
    """Whether oneDNN's fp32 inner product can be called here and computes what torch.mm does, on a
    packed weight and on transposed views (what `TrainableLinear`'s backward passes it)."""
    # A generator of its own: the first call may come in the middle of a seeded run (a resumed one).
    generator = torch.Generator().manual_seed(0)
    try:
        x, w = torch.randn(3, 5, generator=generator), torch.randn(4, 5, generator=generator)
        packed_product = linear(x, pack(w, batch=3))
        view_product = linear(x.t().contiguous().t(), w.t().contiguous().t())
    except (AttributeError, RuntimeError):
        return False
    want = x @ w.t()
    return all(torch.allclose(got, want, rtol=1e-4, atol=1e-5) for got in (packed_product, view_product))


def pack(weight: torch.Tensor, batch: int) -> torch.Tensor:
    """`weight` (out_features, in_features), reordered once into oneDNN's layout for products with
    `batch` rows (the layout depends on it); the result is only for `linear`."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), batch)  # (weight, batch_size)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x @ weight.T (+ bias), a new tensor; `weight` is (out_features, in_features) as it is, or what
    `pack` made of it (faster when the same weight serves many products of one batch size)."""
    # _linear_pointwise(input, weight, bias, attr, scalars, algorithm): "none" fuses no activation after it
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class TrainableLinear(torch.autograd.Function):
    """x @ weight.T + bias with its gradients, all three products through oneDNN (faster than torch's MKL
    for the output layer of a training batch: benchmarks/RESULTS.md). The weight is used as it is,
    unpacked, since it changes every step."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return linear(x, weight, bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = linear(grad, weight.t()) if ctx.needs_input_grad[0] else None
        # grad.T is copied (it is narrow); x.T stays a view, which oneDNN reads as it is
        grad_weight = linear(grad.t().contiguous(), x.t()) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(0) if ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias
