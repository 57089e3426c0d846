"""The model's CPU fast paths: each computes what the plain PyTorch call computes, faster here.

- Dropout masks from random bits (`dropout`): on the CPU the mask is drawn as 16-bit integers, four
  to one 64-bit draw, instead of one float per element; on any other device, `F.dropout`.
- The output layer through oneDNN (`output_layer`): for fp32 on the CPU, when `onednn.available()`
  found oneDNN's inner product callable and right; otherwise (bf16/fp16 autocast, a GPU, a torch
  without those ops) the plain `nn.Linear`.
- Layers one by one (`layer_by_layer`): in training on the CPU with dropout between two or more
  layers, each layer is its own fused call with `dropout` between them, instead of `nn.LSTM`'s
  bernoulli dropout; otherwise the one fused call (cuDNN on a GPU keeps its single kernel).
benchmarks/bench_train.py measures each; tests check each against the plain call.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from . import onednn

_MASK_LEVELS = 1 << 16  # 16 random bits per element: the keep probability is exact to 1/65,536


def dropout(x: torch.Tensor, p: float, training: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """Inverted dropout. On the CPU, the mask comes from `keep_mask` (drawn from `generator`, else torch's
    own), and differentiating it is one multiply. Elsewhere F.dropout, one fused kernel (or, with a
    generator, a mask drawn from it)."""
    if not training or p == 0:
        return x
    if not x.is_cpu:
        if generator is None:
            return nn.functional.dropout(x, p, True)
        return x * keep_mask(x.shape, p, x.dtype, generator).to(x.device)
    return x * keep_mask(x.shape, p, x.dtype, generator)


def keep_mask(
    shape: torch.Size, p: float, dtype: torch.dtype, generator: torch.Generator | None = None
) -> torch.Tensor:
    """0 with probability p, else 1/keep. torch's CPU generator fills a 64-bit integer about as fast as
    it draws one float, so four elements share one integer, 16 bits each. The integers are drawn over
    their full signed range; `random_()` alone leaves every fourth 16-bit lane non-negative."""
    count = math.prod(shape)
    words = torch.empty((count + 3) // 4, dtype=torch.int64).random_(-(2**63), 2**63 - 1, generator=generator)
    draws = words.view(torch.int16)[:count].view(shape)  # uniform over [-32768, 32767]
    kept_levels = max(1, round((1.0 - p) * _MASK_LEVELS))
    scale = _MASK_LEVELS / kept_levels  # 1 / the keep probability the threshold really gives
    return draws.lt(kept_levels - _MASK_LEVELS // 2).to(dtype).mul_(scale)


def output_layer(features: torch.Tensor, head: nn.Linear) -> torch.Tensor:
    """`head(features)`, through oneDNN for fp32 on the CPU (see `onednn.TrainableLinear`)."""
    fp32_cpu = features.is_cpu and features.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
    if not (fp32_cpu and onednn.available()):
        return head(features)
    rows = features.reshape(-1, features.shape[-1])
    logits = onednn.TrainableLinear.apply(rows, head.weight, head.bias)
    return logits.view(*features.shape[:-1], logits.shape[-1])


def layer_by_layer_applies(training: bool, p: float, layers: int, inputs: torch.Tensor) -> bool:
    """Whether `layer_by_layer` replaces the fused call: dropout between layers, in training, on the CPU."""
    return training and p > 0 and layers > 1 and inputs.is_cpu


_FUNCTIONAL = {"lstm": torch.lstm, "gru": torch.gru, "rnn": torch.rnn_tanh}


def layer_by_layer(cell: str, layers: int, between: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor,
                   state, weights: dict[str, torch.Tensor]):  # fmt: skip
    """The layers one call each (torch's own functional LSTM/GRU/RNN, what nn.LSTM calls), with
    `between` (the model's dropout) applied between them: in training, what the fused call with its
    dropout computes, or with a dropout mask per sequence what it cannot."""
    states, finals = state if cell == "lstm" else (state,), []
    out = inputs
    for layer in range(layers):
        if layer > 0:
            out = between(out)
        params = [weights[f"{kind}_l{layer}"] for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        hx = tuple(s[layer : layer + 1] for s in states)
        # (input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
        out, *final = _FUNCTIONAL[cell](out, hx if cell == "lstm" else hx[0], params, True, 1, 0.0, True, False, True)
        finals.append(final)
    new_states = tuple(torch.cat(parts) for parts in zip(*finals, strict=True))
    return out, new_states if cell == "lstm" else new_states[0]
