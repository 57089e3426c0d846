"""Loss over a whole text with the recurrent state carried from window to window.

Used for validation during training and by `charrnn eval`. Every character after the first is
predicted exactly once: the text is laid out as streams like the training batches, and the few
characters left over after the last stream are scored continuing that stream's state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .batches import BatchSource
from .model import CharRNN

LN2 = math.log(2.0)


@dataclass(frozen=True)
class EvalResult:
    loss: float  # mean nats per predicted character
    chars: int  # characters predicted

    @property
    def bpc(self) -> float:
        return self.loss / LN2

    def to_json(self) -> dict:
        return {"loss": self.loss, "bpc": self.bpc, "chars": self.chars}


@torch.inference_mode()
def evaluate(model: CharRNN, ids: np.ndarray, streams: int = 64, seq_len: int = 250) -> EvalResult:
    """Mean cross-entropy of `model` on `ids` (dropout off), predicting ids[1:] from what precedes."""
    device = model.head.weight.device
    streams = max(1, min(streams, (len(ids) - 1) // max(seq_len // 4, 1)))
    source = BatchSource(ids, streams, seq_len, device)
    was_training = model.training
    model.eval()
    try:
        state = model.init_state(streams, device)
        total = torch.zeros((), dtype=torch.float64, device=device)
        count = 0
        for inputs, targets in source.epoch_batches():
            loss, state = _summed_loss(model, inputs, targets, state)
            total += loss
            count += targets.numel()
        rest = source.remainder()
        if rest is not None:
            last_row = tuple(s[:, -1:].contiguous() for s in state)
            total += _summed_loss(model, *rest, last_row)[0]
            count += rest[1].numel()
    finally:
        model.train(was_training)
    return EvalResult(float(total) / count, count)


def _summed_loss(model: CharRNN, inputs, targets, state):
    logits, state = model(inputs, state)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum")
    return loss.double(), state
