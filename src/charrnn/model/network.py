"""`ModelConfig` and `CharRNN`: characters -> embedding -> LSTM/GRU/RNN layers -> dropout -> logits.

The notebook feeds one-hot vectors into the first LSTM layer; an embedding lookup is the same
computation (a one-hot times a matrix picks a row) without the wasted multiply-by-zero.
The recurrent layers are PyTorch's fused `nn.LSTM`/`nn.GRU`/`nn.RNN` (cuDNN on a GPU, oneDNN on the
CPU); `fastpaths` holds the CPU shortcuts around them and when each is taken.
`weight_drop` regularises the recurrence itself without giving up the fused kernels: in training,
each batch runs them with a fresh DropConnect mask on the hidden-to-hidden weights (AWD-LSTM's
"weight drop"), the same mask at every time step.
State is always a tuple of tensors shaped (layers, batch, hidden): (h, c) for LSTM, (h,) otherwise.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, fields, replace

import torch
from torch import nn

from ..errors import CharRNNError
from ..settings import check, fraction, non_negative, option, positive
from . import fastpaths

CELLS = ("lstm", "gru", "rnn")
MAX_AUTO_EMBED = 128
# The settings that act in training only: none changes the weights' shapes or what evaluation computes.
REGULARISERS = ("dropout", "weight_drop", "locked_dropout", "input_dropout", "embed_dropout")
State = tuple[torch.Tensor, ...]
# cuDNN copies masked weights into its own buffer each call; that is the price of weight drop, not a bug.
_CUDNN_COPY_WARNING = "RNN module weights are not part of single contiguous chunk"


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 0  # 0 until the training text is read: the vocabulary decides it
    cell: str = option("lstm", "recurrent cell", choices=CELLS)
    # one wide layer learns faster than two narrow ones in minutes on a CPU (docs/experiments.md)
    hidden: int = positive(512, "units per layer")
    layers: int = positive(1, "recurrent layers")
    dropout: float = fraction(0.1, "dropout between layers and before the output")
    embed_dim: int = non_negative(0, "character embedding size", shown="the vocabulary's size, at most 128")
    weight_drop: float = fraction(0.0, "DropConnect on the recurrent weights in training, 0 for none")
    # AWD-LSTM's other regularisers (Merity et al. 2018), each off until measured (docs/experiments.md)
    locked_dropout: bool = option(
        False, "one dropout mask per sequence, shared by all its steps (variational), for --dropout and --input-dropout"
    )
    input_dropout: float = fraction(0.0, "dropout on the first layer's input (the characters' embeddings), 0 for none")
    embed_dropout: float = fraction(0.0, "drop whole characters' embedding rows in training, 0 for none")

    def __post_init__(self):
        if self.vocab_size < 0:
            raise CharRNNError(f"vocab_size must not be negative, got {self.vocab_size}")
        check(self)

    def without_regularisation(self) -> ModelConfig:
        """The same network with every training-only regulariser off (for learning at evaluation)."""
        return replace(self, **{name: type(getattr(self, name))() for name in REGULARISERS})

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


MODEL_FLAGS = frozenset(f.name for f in fields(ModelConfig)) - {"vocab_size"}  # the flags that name the model


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
        # Under torchrun every rank draws weight-drop masks from one shared generator (the weights are
        # replicated); alone, from torch's own, as always.
        self.weight_drop_generator: torch.Generator | None = None

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def init_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        device = device or self.device
        shape = (self.config.layers, batch_size, self.config.hidden)
        count = 2 if self.config.cell == "lstm" else 1
        return tuple(torch.zeros(shape, device=device) for _ in range(count))

    def forward(self, ids: torch.Tensor, state: State | None = None, outputs: bool = False):
        """Logits (batch, steps, vocab) for every position and the state after the last step; with
        `outputs`, also the last layer's outputs before and after the output dropout (for AR and TAR)."""
        if state is None:
            state = self.init_state(ids.shape[0], ids.device)
        rnn_state = state if self.config.cell == "lstm" else state[0]
        inputs = self._drop(self._embedded(ids), self.config.input_dropout)
        out, new_state = self._recurrent(inputs, rnn_state)
        dropped = self._drop(out, self.config.dropout)
        logits = fastpaths.output_layer(dropped, self.head)
        new_state = new_state if isinstance(new_state, tuple) else (new_state,)
        return (logits, new_state, (out, dropped)) if outputs else (logits, new_state)

    def _embedded(self, ids: torch.Tensor) -> torch.Tensor:
        """The embeddings; in training with --embed-dropout, each character's whole row kept or dropped."""
        p = self.config.embed_dropout
        if not (self.training and p > 0):
            return self.embed(ids)
        rows = fastpaths.keep_mask((self.config.vocab_size, 1), p, self.embed.weight.dtype).to(ids.device)
        return nn.functional.embedding(ids, self.embed.weight * rows)

    def _drop(self, x: torch.Tensor, p: float) -> torch.Tensor:
        """Dropout on (batch, steps, features): a mask per element, or with --locked-dropout one per sequence."""
        if not (self.training and p > 0):
            return x
        if not self.config.locked_dropout:
            return fastpaths.dropout(x, p, True)
        return x * fastpaths.keep_mask((x.shape[0], 1, x.shape[2]), p, x.dtype).to(x.device)

    def _recurrent(self, inputs: torch.Tensor, state):
        config = self.config
        weight_drop = self.training and config.weight_drop > 0
        layer_by_layer = fastpaths.layer_by_layer_applies(self.training, config.dropout, config.layers, inputs)
        locked = self.training and config.locked_dropout and config.dropout > 0 and config.layers > 1
        if not (weight_drop or layer_by_layer or locked):
            return self.rnn(inputs, state)
        weights = dict(self.rnn.named_parameters())
        if weight_drop:
            for name in self.recurrent_weight_names:
                weights[name] = fastpaths.dropout(weights[name], config.weight_drop, True, self.weight_drop_generator)
        if layer_by_layer or locked:  # the fused call's dropout between layers is per element, not per sequence
            between = lambda x: self._drop(x, config.dropout)  # noqa: E731
            return fastpaths.layer_by_layer(config.cell, config.layers, between, inputs, state, weights)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_CUDNN_COPY_WARNING)
            return torch.func.functional_call(self.rnn, weights, (inputs, state))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def parameters_of(config: ModelConfig) -> int:
    """The parameters a model of `config` (its vocabulary's size filled in) has, built on no device."""
    with torch.device("meta"):
        return count_parameters(CharRNN(config))
