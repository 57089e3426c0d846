"""Loss over a whole text with the recurrent state carried from window to window.

Used for validation during training and by `charrnn eval`. Every character after the first is
predicted exactly once: the text is laid out as streams like the training batches, and the few
characters left over after the last stream are scored continuing that stream's state. Each stream but
the first starts from the state left by reading, unscored, the `lead_in` characters before it, so
that cutting the text into streams (for speed) does not make the model start cold in mid-text: the
figure then matches reading the text as one stream to within a few thousandths (docs/experiments.md).

`evaluate_dynamic` is dynamic evaluation (Krause et al., 2018, "Dynamic Evaluation of Neural Sequence
Models"): it reads the text once, in order, as one stream, and after scoring each window takes one SGD
step on it, so the model adapts to the text's names and style as it goes. Each character is scored
before the model learns from it, so the figure is an honest sequential prediction loss — but a
different measure from `evaluate`'s, and reported under its own name.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ..data.batches import BatchSource
from ..errors import CharRNNError
from ..model.ensemble import Ensemble
from ..model.network import CharRNN
from ..runs.metrics import LN2, WindowProgress

# Window and rate chosen in docs/experiments.md, "Dynamic evaluation".
DYNAMIC_SEQ_LEN = 50
DYNAMIC_LR = 0.1


@dataclass(frozen=True)
class EvalResult:
    loss: float  # mean nats per predicted character
    chars: int  # characters predicted
    dynamic_lr: float | None = None  # set for dynamic evaluation (0: one stream, no learning)

    @property
    def bpc(self) -> float:
        return self.loss / LN2

    def to_json(self) -> dict:
        report = {"loss": self.loss, "bpc": self.bpc, "chars": self.chars, "symbols": self.chars}
        return report if self.dynamic_lr is None else {**report, "dynamic_lr": self.dynamic_lr}


@torch.inference_mode()
def evaluate(
    model: CharRNN | Ensemble,
    ids: np.ndarray,
    streams: int = 64,
    seq_len: int = 250,
    lead_in: int = 250,
    share: tuple[int, int] = (0, 1),
    total: Callable[[list[float]], list[float]] = lambda values: values,
    progress: WindowProgress | None = None,
) -> EvalResult:
    """Mean cross-entropy of `model` (or of an ensemble's mean probabilities) on `ids` (dropout off),
    predicting ids[1:] from what precedes. With `share` (rank, ranks) this process scores streams rank,
    rank + ranks, ... of the same layout and `total` sums the ranks' losses and counts, so every rank
    gets the figure one process would. `progress(windows, count)` may wrap the windows, e.g. in a bar."""
    device = model.device
    rank, ranks = share
    streams = max(1, min(streams, (len(ids) - 1) // max(seq_len // 4, 1)))
    source = BatchSource(ids, streams, seq_len, device)
    mine = slice(rank, None, ranks)
    was_training = model.training
    model.eval()
    try:
        state = _lead_in_state(model, ids, streams, source.stream_len, min(lead_in, source.stream_len))
        state = tuple(s[:, mine].contiguous() for s in state)
        summed = torch.zeros((), dtype=torch.float64, device=device)
        count = 0
        windows = source.epoch_batches()
        for inputs, targets in progress(windows, source.windows_per_epoch) if progress else windows:
            if inputs[mine].shape[0]:
                loss, state = _summed_loss(model, inputs[mine], targets[mine], state)
                summed += loss
                count += targets[mine].numel()
        rest = source.remainder()
        if rest is not None and (streams - 1) % ranks == rank:  # the rank holding the last stream continues it
            last_row = tuple(s[:, -1:].contiguous() for s in state)
            summed += _summed_loss(model, *rest, last_row)[0]
            count += rest[1].numel()
    finally:
        model.train(was_training)
    loss_sum, count = total([float(summed), float(count)])
    return EvalResult(loss_sum / count, int(count))


def _lead_in_state(model: CharRNN | Ensemble, ids: np.ndarray, streams: int, stream_len: int, width: int):
    """Each stream's starting state: zeros for the first, which starts the text; for the others, the
    state after reading the `width` characters just before the stream."""
    device = model.device
    state = model.init_state(streams, device)
    if streams == 1 or width == 0:
        return state
    starts = np.arange(1, streams) * stream_len
    before = np.stack([ids[start - width : start] for start in starts]).astype(np.int64)
    _, read = model(torch.from_numpy(before).to(device), model.init_state(streams - 1, device))
    return tuple(torch.cat([cold[:, :1], warm], dim=1) for cold, warm in zip(state, read, strict=True))


def _summed_loss(model: CharRNN | Ensemble, inputs, targets, state):
    logits, state = model(inputs, state)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum")
    return loss.double(), state


def evaluate_dynamic(
    model: CharRNN,
    ids: np.ndarray,
    lr: float = DYNAMIC_LR,
    seq_len: int = DYNAMIC_SEQ_LEN,
    progress: WindowProgress | None = None,
) -> EvalResult:
    """Mean cross-entropy of `model` on `ids` read as one stream, learning from each window once scored.

    `lr` 0 reads the text the same way without learning: the control that separates what adaptation
    gains from what one unbroken stream gains. `model` itself is left untouched.
    """
    if isinstance(model, Ensemble):
        raise CharRNNError("dynamic evaluation takes one model, not an ensemble")
    if not lr >= 0:  # also refuses NaN
        raise CharRNNError(f"dynamic evaluation's lr (--dynamic-lr) must not be negative, got {lr}")
    if seq_len <= 0:
        raise CharRNNError(f"dynamic evaluation's seq_len must be positive, got {seq_len}")
    if len(ids) < 2:
        raise CharRNNError("text too short to evaluate: need at least two characters")
    windows = dynamic_window_losses(model, ids, lr, seq_len)
    if progress:
        windows = progress(windows, -(-(len(ids) - 1) // seq_len))
    loss = sum(windows) / (len(ids) - 1)
    if not math.isfinite(loss):
        raise CharRNNError(f"dynamic evaluation diverged at learning rate {lr}; try a lower one")
    return EvalResult(loss, len(ids) - 1, dynamic_lr=lr)


def _learner(model: CharRNN) -> CharRNN:
    """A copy of `model` that learns without dropout. cuDNN computes an RNN's gradients only in training
    mode, so the copy stays in training mode with its regularisers (dropout, weight drop, ...) off."""
    learner = copy.deepcopy(model).requires_grad_(True).train()
    learner.config = model.config.without_regularisation()
    learner.rnn.dropout = 0.0
    return learner


def dynamic_window_losses(model: CharRNN, ids: np.ndarray, lr: float, seq_len: int) -> Iterator[float]:
    """Summed loss of each window of `ids` in turn, scored by a copy of `model` that then takes one SGD
    step on that window."""
    learner = _learner(model)
    device = learner.device
    optimizer = torch.optim.SGD(learner.parameters(), lr=lr)
    state = learner.init_state(1, device)
    for start in range(0, len(ids) - 1, seq_len):
        # One window at a time: the text stays in its one-byte ids, never a whole int64 copy.
        window = torch.from_numpy(np.asarray(ids[start : start + seq_len + 1], dtype=np.int64)).to(device)
        with torch.set_grad_enabled(lr > 0):
            logits, state = learner(window[None, :-1], state)
            loss = F.cross_entropy(logits[0], window[1:], reduction="sum")
        yield loss.item()
        if lr > 0:
            optimizer.zero_grad(set_to_none=True)
            (loss / (len(window) - 1)).backward()
            optimizer.step()
        state = tuple(s.detach() for s in state)
