"""Activation regularisation (AR) and temporal activation regularisation (TAR), as AWD-LSTM adds them to
its loss (Merity et al. 2018): AR penalises large outputs of the last layer (after its dropout), TAR
outputs that change much from one step to the next (before it)."""

from __future__ import annotations

import torch


def activation_penalty(raw: torch.Tensor, dropped: torch.Tensor, ar: float, tar: float) -> torch.Tensor:
    """ar * mean(dropped²) + tar * mean((raw[t] - raw[t-1])²), over (batch, steps, units), in float32."""
    penalty = raw.new_zeros((), dtype=torch.float32)
    if ar > 0:
        penalty = penalty + ar * dropped.float().pow(2).mean()
    if tar > 0 and raw.shape[1] > 1:
        penalty = penalty + tar * (raw[:, 1:] - raw[:, :-1]).float().pow(2).mean()
    return penalty
