"""`trace`: everything a trained model computes while it reads a text, as arrays: per layer the hidden
and cell states and every gate, each character's log-probability and the likeliest next characters.

The recurrent layers are run step by step from their own weights (`nn.LSTM`/`nn.GRU`/`nn.RNN` keep
the gates inside their fused kernels): each layer's input projection for the whole text at once, then
one small product a character. The state is carried from a zero start, as `score` carries it, so the
log-probabilities are `score`'s (tests hold both, and the states, to the fused layers within 1e-5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.vocab import Vocab
from ..errors import CharRNNError
from ..model.network import CharRNN

GATES = {
    "lstm": ("input", "forget", "candidate", "output"),  # nn.LSTM's row order: i, f, g, o
    "gru": ("reset", "update", "candidate"),  # nn.GRU's: r, z, n
    "rnn": (),
}


@dataclass
class Trace:
    """What the model computed reading `text`; index t is after reading character t."""

    text: str
    cell: str
    layers: list[dict[str, np.ndarray]]  # per layer: "h", "c" (LSTM) and each gate, (len(text), hidden)
    log_probs: np.ndarray  # log p(text[t] | text[:t]); NaN for the first character, which has no context
    top_ids: np.ndarray  # (len(text), k): the k likeliest next symbols after reading character t
    top_log_probs: np.ndarray

    def kinds(self) -> tuple[str, ...]:
        """The arrays each layer holds: "h", "c" for an LSTM, then its gates."""
        return tuple(self.layers[0])


@torch.inference_mode()
def trace(model: CharRNN, vocab: Vocab, text: str, top: int = 5) -> Trace:
    """The model's states, gates and predictions over `text` (its symbols, at least one)."""
    if not isinstance(model, CharRNN):
        raise CharRNNError("trace reads one model's cells: give one run, not an ensemble (--with)")
    if not text:
        raise CharRNNError("nothing to trace: the text is empty")
    config = model.config
    ids = torch.as_tensor(vocab.encode(text).astype("int64"))
    rnn = model.rnn
    inputs = model.embed.weight.detach().float().cpu()[ids]
    layers = []
    for index in range(config.layers):
        weights = {name: getattr(rnn, f"{name}_l{index}").detach().float().cpu() for name in _WEIGHT_NAMES}
        layer = _STEPPERS[config.cell](inputs, weights, config.hidden)
        layers.append({name: value.numpy() for name, value in layer.items()})
        inputs = layer["h"]
    logits = torch.nn.functional.linear(inputs, model.head.weight.float().cpu(), model.head.bias.float().cpu())
    log_softmax = torch.log_softmax(logits.double(), dim=-1)
    chosen = torch.full((len(text),), float("nan"), dtype=torch.float64)
    chosen[1:] = log_softmax[:-1].gather(1, ids[1:, None])[:, 0]
    values, indices = log_softmax.topk(min(top, len(vocab)), dim=-1)
    return Trace(text, config.cell, layers, chosen.numpy(), indices.numpy(), values.numpy())


_WEIGHT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _lstm(inputs: torch.Tensor, w: dict, hidden: int) -> dict[str, torch.Tensor]:
    projected = inputs @ w["weight_ih"].T + w["bias_ih"] + w["bias_hh"]
    steps = len(inputs)
    out = {name: torch.empty(steps, hidden) for name in ("h", "c", *GATES["lstm"])}
    h, c, w_hh = torch.zeros(hidden), torch.zeros(hidden), w["weight_hh"].T.contiguous()
    for t in range(steps):
        gates = projected[t] + h @ w_hh
        i, f, g, o = gates.split(hidden)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        out["h"][t], out["c"][t] = h, c
        out["input"][t], out["forget"][t], out["candidate"][t], out["output"][t] = i, f, g, o
    return out


def _gru(inputs: torch.Tensor, w: dict, hidden: int) -> dict[str, torch.Tensor]:
    projected = inputs @ w["weight_ih"].T + w["bias_ih"]
    steps = len(inputs)
    out = {name: torch.empty(steps, hidden) for name in ("h", *GATES["gru"])}
    h, w_hh, b_hh = torch.zeros(hidden), w["weight_hh"].T.contiguous(), w["bias_hh"]
    for t in range(steps):
        x_r, x_z, x_n = projected[t].split(hidden)
        h_r, h_z, h_n = (h @ w_hh + b_hh).split(hidden)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h
        out["h"][t], out["reset"][t], out["update"][t], out["candidate"][t] = h, r, z, n
    return out


def _rnn(inputs: torch.Tensor, w: dict, hidden: int) -> dict[str, torch.Tensor]:
    projected = inputs @ w["weight_ih"].T + w["bias_ih"] + w["bias_hh"]
    out = {"h": torch.empty(len(inputs), hidden)}
    h, w_hh = torch.zeros(hidden), w["weight_hh"].T.contiguous()
    for t in range(len(inputs)):
        h = torch.tanh(projected[t] + h @ w_hh)
        out["h"][t] = h
    return out


_STEPPERS = {"lstm": _lstm, "gru": _gru, "rnn": _rnn}
