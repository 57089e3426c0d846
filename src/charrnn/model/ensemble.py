"""`Ensemble`: several trained models read the same text and predict by the mean of their
next-character probabilities.

Models trained on one text from different seeds (or widths, depths, cells) err differently once each
has learned what the text can teach it, and the mean of their probabilities predicts better than any
one of them (docs/experiments.md, "Averaging models"). An `Ensemble` looks like one `CharRNN` to `evaluate` and to
`Sampler`: its output is the log of the mean probabilities (valid logits), and its state is its
members' states one after another in one flat tuple, each tensor still (layers, batch, hidden), so
code that slices or joins a model's state along the batch does the same for an ensemble's.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..data.vocab import Vocab
from ..errors import CharRNNError
from ..runs.checkpoint import CheckpointInfo
from ..runs.rundir import load_model
from .network import CharRNN, State


def mean_log_probs(logits: Sequence):
    """log(mean of softmax(l)) over `logits`, a list of (batch, vocab) torch tensors or numpy arrays."""
    if isinstance(logits[0], np.ndarray):
        stacked = np.stack(logits)
        probs = np.exp(stacked - stacked.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        with np.errstate(divide="ignore"):  # a character every member rules out gets log 0 = -inf
            return np.log(probs.mean(axis=0))
    log_probs = torch.stack([torch.log_softmax(part.float(), dim=-1) for part in logits])
    return torch.logsumexp(log_probs, dim=0) - math.log(len(logits))


class Ensemble(nn.Module):
    """The mean of its members' next-character probabilities, shaped as a `CharRNN`."""

    def __init__(self, members: Sequence[CharRNN]):
        super().__init__()
        if not members:
            raise CharRNNError("an ensemble needs at least one model")
        if len({member.config.vocab_size for member in members}) > 1:
            raise CharRNNError("the models of an ensemble must share one vocabulary")
        if len({member.device for member in members}) > 1:
            raise CharRNNError("the models of an ensemble must be on one device")
        self.members = nn.ModuleList(members)
        self.state_sizes = [len(member.init_state(1, "meta")) for member in members]  # 2 for an LSTM's (h, c)

    @property
    def device(self) -> torch.device:
        return self.members[0].device

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        return tuple(part for member in self.members for part in member.init_state(batch_size, device))

    def split_state(self, state: State) -> list[State]:
        """Each member's own state, from the flat tuple."""
        parts, start = [], 0
        for size in self.state_sizes:
            parts.append(tuple(state[start : start + size]))
            start += size
        return parts

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Log mean probabilities (batch, steps, vocab) and the members' states after the last step."""
        state = state if state is not None else self.init_state(ids.shape[0], ids.device)
        outputs = [member(ids, part) for member, part in zip(self.members, self.split_state(state), strict=True)]
        new_state = tuple(part for _, member_state in outputs for part in member_state)
        return mean_log_probs([logits for logits, _ in outputs]), new_state


def load_ensemble(
    paths: Sequence[str | os.PathLike], which: str = "best", device: str | torch.device = "cpu"
) -> tuple[Ensemble, Vocab, list[CheckpointInfo]]:
    """(Ensemble, its one Vocab, each member's CheckpointInfo) for run directories or checkpoint files."""
    if not paths:
        raise CharRNNError("an ensemble needs at least one model")
    loaded = [load_model(path, which, device) for path in paths]
    vocab = loaded[0][1]
    for path, (_, other, _) in zip(paths[1:], loaded[1:], strict=True):
        if other != vocab:
            only = sorted(set(vocab.chars) ^ set(other.chars))
            raise CharRNNError(
                f"{path}: its vocabulary ({len(other)} characters) differs from {paths[0]}'s ({len(vocab)}; "
                f"in one only: {''.join(only)[:20]!r}); an ensemble's models must be trained on the same characters"
            )
    return Ensemble([model for model, _, _ in loaded]).eval(), vocab, [info for _, _, info in loaded]


def load_models(
    paths: Sequence[str | os.PathLike], which: str = "best", device: str | torch.device = "cpu"
) -> tuple[CharRNN | Ensemble, Vocab, list[CheckpointInfo]]:
    """One run's model, or several runs' `Ensemble`: the one place that decides which (the CLI's `--with`,
    `charrnn.load` and the server all come here)."""
    if len(paths) == 1:
        model, vocab, info = load_model(paths[0], which, device)
        return model, vocab, [info]
    return load_ensemble(paths, which, device)
