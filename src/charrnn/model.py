"""`ModelConfig` and `CharRNN`: characters -> embedding -> LSTM/GRU/RNN layers -> dropout -> logits.

The notebook feeds one-hot vectors into the first LSTM layer; an embedding lookup is the same
computation (a one-hot times a matrix picks a row) without the wasted multiply-by-zero.
The recurrent layers are PyTorch's fused `nn.LSTM`/`nn.GRU`/`nn.RNN`, so cuDNN serves them on GPU
(and oneDNN on the CPU; there, training with dropout between layers calls them one layer at a time,
so that `dropout`, faster than theirs, can sit in between). On the CPU the output layer's products go
through oneDNN as well (`onednn.TrainableLinear`), for fp32.
`weight_drop` regularises the recurrence itself without giving up the fused kernels: in training,
each batch runs them with a fresh DropConnect mask on the hidden-to-hidden weights (AWD-LSTM's
"weight drop"), the same mask at every time step.
State is always a tuple of tensors shaped (layers, batch, hidden): (h, c) for LSTM, (h,) otherwise.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, fields, replace

import torch
from torch import nn

from . import onednn
from .errors import CharRNNError

CELLS = ("lstm", "gru", "rnn")
MAX_AUTO_EMBED = 128
State = tuple[torch.Tensor, ...]
# cuDNN copies masked weights into its own buffer each call; that is the price of weight drop, not a bug.
warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous chunk")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 0  # 0 until the training text is read: the vocabulary decides it
    cell: str = "lstm"
    hidden: int = 512
    layers: int = 1  # one wide layer learns faster than two narrow ones in minutes on a CPU (README)
    dropout: float = 0.1
    embed_dim: int = 0  # 0: the vocabulary's size up to MAX_AUTO_EMBED, as wide as the notebook's one-hot input
    weight_drop: float = 0.0  # DropConnect on the recurrent (hidden-to-hidden) weights in training; 0: off

    def __post_init__(self):
        if self.cell not in CELLS:
            raise CharRNNError(f"unknown --cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if self.vocab_size < 0 or self.embed_dim < 0:
            raise CharRNNError("vocab_size and --embed-dim must not be negative")
        for name in ("hidden", "layers"):
            if getattr(self, name) <= 0:
                raise CharRNNError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        for name in ("dropout", "weight_drop"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise CharRNNError(f"--{name.replace('_', '-')} must be in [0, 1), got {getattr(self, name)}")

    def for_vocab(self, vocab_size: int) -> ModelConfig:
        """This config with the vocabulary's size filled in (and the embedding width, if automatic)."""
        return replace(self, vocab_size=vocab_size, embed_dim=self.embed_dim or min(vocab_size, MAX_AUTO_EMBED))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


_RNN_CLASSES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class CharRNN(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.vocab_size <= 0 or config.embed_dim <= 0:
            raise CharRNNError("build the model from ModelConfig.for_vocab(vocab_size)")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        self.rnn = _RNN_CLASSES[config.cell](
            config.embed_dim,
            config.hidden,
            num_layers=config.layers,
            dropout=config.dropout if config.layers > 1 else 0.0,
            batch_first=True,
        )
        self.head = nn.Linear(config.hidden, config.vocab_size)
        self.recurrent_weight_names = [name for name, _ in self.rnn.named_parameters() if name.startswith("weight_hh")]

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        device = device or self.head.weight.device
        shape = (self.config.layers, batch_size, self.config.hidden)
        count = 2 if self.config.cell == "lstm" else 1
        return tuple(torch.zeros(shape, device=device) for _ in range(count))

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Logits (batch, steps, vocab) for every position and the state after the last step."""
        if state is None:
            state = self.init_state(ids.shape[0], ids.device)
        rnn_state = state if self.config.cell == "lstm" else state[0]
        out, new_state = self._recurrent(self.embed(ids), rnn_state)
        logits = self._output_layer(dropout(out, self.config.dropout, self.training))
        return logits, new_state if isinstance(new_state, tuple) else (new_state,)

    def _output_layer(self, features: torch.Tensor) -> torch.Tensor:
        """`self.head`, through oneDNN for fp32 on the CPU (see `onednn.TrainableLinear`)."""
        fp32_cpu = features.is_cpu and features.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
        if not (fp32_cpu and onednn.available()):
            return self.head(features)
        rows = features.reshape(-1, features.shape[-1])
        logits = onednn.TrainableLinear.apply(rows, self.head.weight, self.head.bias)
        return logits.view(*features.shape[:-1], logits.shape[-1])

    def _recurrent(self, inputs: torch.Tensor, state):
        weight_drop = self.training and self.config.weight_drop > 0
        # nn.LSTM draws its between-layer dropout with bernoulli; on the CPU, running the layers one by
        # one with `dropout` between them is faster. On a GPU the fused call (one cuDNN kernel) stays.
        layer_by_layer = self.training and self.config.dropout > 0 and self.config.layers > 1 and inputs.is_cpu
        if not (weight_drop or layer_by_layer):
            return self.rnn(inputs, state)
        weights = dict(self.rnn.named_parameters())
        if weight_drop:
            for name in self.recurrent_weight_names:
                weights[name] = dropout(weights[name], self.config.weight_drop, True)
        if layer_by_layer:
            return self._layer_by_layer(inputs, state, weights)
        return torch.func.functional_call(self.rnn, weights, (inputs, state))

    def _layer_by_layer(self, inputs: torch.Tensor, state, weights: dict[str, torch.Tensor]):
        """The layers one call each (torch's own functional LSTM/GRU/RNN, what nn.LSTM calls), with
        `dropout` between them: in training, what the fused call with its dropout computes."""
        cell, states, finals = self.config.cell, state if self.config.cell == "lstm" else (state,), []
        run = {"lstm": torch.lstm, "gru": torch.gru, "rnn": torch.rnn_tanh}[cell]
        out = inputs
        for layer in range(self.config.layers):
            if layer > 0:
                out = dropout(out, self.config.dropout, True)
            params = [weights[f"{kind}_l{layer}"] for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            hx = tuple(s[layer : layer + 1] for s in states)
            out, *final = run(out, hx if cell == "lstm" else hx[0], params, True, 1, 0.0, True, False, True)
            finals.append(final)
        new_states = tuple(torch.cat(parts) for parts in zip(*finals, strict=True))
        return out, new_states if cell == "lstm" else new_states[0]


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout. On the CPU, the mask comes from `_cpu_keep_mask`, and differentiating it is one
    multiply. Elsewhere F.dropout, one fused kernel."""
    if not training or p == 0:
        return x
    if not x.is_cpu:
        return nn.functional.dropout(x, p, True)
    return x * _cpu_keep_mask(x.shape, p, x.dtype)


_MASK_LEVELS = 1 << 16  # 16 random bits per element: the keep probability is exact to 1/65,536


def _cpu_keep_mask(shape: torch.Size, p: float, dtype: torch.dtype) -> torch.Tensor:
    """0 with probability p, else 1/keep. torch's CPU generator fills a 64-bit integer in about 3 ns
    and draws a float in about 2, so four elements share one integer, 16 bits each: the whole mask
    costs 0.6 of `rand_like(x) < keep` (6.7 against 11.2 ms for 100x100x512 here). The integers are drawn
    over their full signed range; `random_()` alone leaves every fourth 16-bit lane non-negative."""
    count = math.prod(shape)
    words = torch.empty((count + 3) // 4, dtype=torch.int64).random_(-(2**63), 2**63 - 1)
    draws = words.view(torch.int16)[:count].view(shape)  # uniform over [-32768, 32767]
    kept_levels = max(1, round((1.0 - p) * _MASK_LEVELS))
    scale = _MASK_LEVELS / kept_levels  # 1 / the keep probability the threshold really gives
    return draws.lt(kept_levels - _MASK_LEVELS // 2).to(dtype).mul_(scale)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
