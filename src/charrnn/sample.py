"""`Sampler`: text from a trained model, one character at a time from the carried state.

The prime runs once through the fused recurrent layers to warm the state; after that each new
character costs one step of a hand-written cell (the same weights, read straight from the
`nn.LSTM`/`nn.GRU`/`nn.RNN`), never a re-run of the prefix. The first layer's input projection is
precomputed per character (embedding x input weights + biases), so feeding a character is a row
lookup. Several samples are drawn together as one batch. An `Ensemble` steps each of its models
so, and samples from the mean of their probabilities.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import onednn
from .ensemble import Ensemble, mean_log_probs
from .errors import CharRNNError
from .model import CharRNN, State
from .scoring import TextScore, score_text
from .settings import check, non_negative, option
from .stops import cut_at_stop, until_stop
from .vocab import Vocab


@dataclass(frozen=True)
class SamplingOptions:
    temperature: float = option(1.0, "below 1: safer, above 1: wilder; 0: greedy", low=0, high=100)
    top_k: int = non_negative(0, "sample among the k likeliest characters (0: all)")
    top_p: float = option(1.0, "sample among the likeliest characters holding p of the mass (1: all)", low=0,
                          low_open=True, high=1)  # fmt: skip
    greedy: bool = option(False, "always take the likeliest character")

    def __post_init__(self):
        check(self)

    @property
    def is_greedy(self) -> bool:
        return self.greedy or self.temperature == 0


def pick_next(logits: torch.Tensor, options: SamplingOptions, generator: torch.Generator) -> torch.Tensor:
    """Next ids (batch,) from logits (batch, vocab) under temperature, top-k and top-p."""
    if options.is_greedy:
        return logits.argmax(dim=-1)
    indices = None
    if 0 < options.top_k < logits.shape[-1]:
        logits, indices = torch.topk(logits, options.top_k, dim=-1)  # the k likeliest, in order
    if options.temperature != 1.0:
        logits = logits / options.temperature
    if options.top_p < 1.0:
        if indices is None:
            logits, indices = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(logits, dim=-1)
        # Drop a character once the ones before it already hold top_p of the mass. The first always stays,
        # even for a top_p that float32 rounds to 0.
        drop = torch.cumsum(probs, dim=-1) - probs >= options.top_p
        drop[..., 0] = False
        logits = logits.masked_fill(drop, float("-inf"))
    choice = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)
    return (choice if indices is None else indices.gather(-1, choice)).squeeze(-1)


def pick_next_row(logits: np.ndarray, options: SamplingOptions, rng: np.random.Generator) -> int:
    """`pick_next` for a single row of logits (vocab,) in numpy: the batch-1 loop on the CPU, where
    each of torch's calls would cost more than the whole choice does here."""
    if options.is_greedy:
        return int(logits.argmax())
    ranked = np.argsort(-logits, kind="stable")  # likeliest first
    if 0 < options.top_k < len(ranked):
        ranked = ranked[: options.top_k]
    scaled = logits[ranked] * (1.0 / options.temperature)
    weights = np.exp(scaled - scaled[0])  # unnormalised softmax; the first is the largest
    if options.top_p < 1.0:
        before = np.cumsum(weights) - weights  # mass of the likelier ones; the first always stays
        keep = before < options.top_p * weights.sum()
        keep[0] = True  # even for a top_p that float32 rounds to 0
        weights = weights[keep]
    cumulative = np.cumsum(weights)
    chosen = np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")
    return int(ranked[min(chosen, len(cumulative) - 1)])


def pick_next_rows(
    logits: np.ndarray, temperature: np.ndarray, top_k: np.ndarray, top_p: np.ndarray, draws: np.ndarray
) -> np.ndarray:
    """`pick_next_row` for a batch whose rows each have their own options and their own uniform draw
    (`draws`, one per row from that row's generator; NaN for a greedy row, which draws nothing): row i
    gets what `pick_next_row` gives for row i with the same draw, in one numpy pass, in the same
    float32 arithmetic (numpy's scalar rules make `pick_next_row` compute in the logits' dtype)."""
    batch, vocab = logits.shape
    dtype = logits.dtype
    greedy = np.isnan(draws)
    rows = np.arange(batch)[:, None]
    ranked = rank_rows(logits)
    scale = (1.0 / np.where(greedy, 1.0, temperature)).astype(dtype)
    scaled = logits[rows, ranked] * scale[:, None]
    weights = np.exp(scaled - scaled[:, :1])
    cut = np.where((top_k > 0) & (top_k < vocab), top_k, vocab)
    kept = None
    if (cut < vocab).any():
        kept = np.arange(vocab)[None, :] < cut[:, None]
        weights[~kept] = 0
    limited = top_p < 1.0
    if limited.any():
        kept = np.ones((batch, vocab), dtype=bool) if kept is None else kept
        before = np.cumsum(weights, axis=1) - weights
        total = weights.sum(axis=1) * top_p.astype(dtype)
        kept &= ~((before >= total[:, None]) & limited[:, None])
        kept[:, 0] = True  # the likeliest always stays, as in pick_next_row
        weights[~kept] = 0
    cumulative = np.cumsum(weights, axis=1)
    targets = np.where(greedy, 0.0, draws).astype(dtype) * cumulative[:, -1]
    last = cut - 1 if kept is None else kept.sum(axis=1) - 1
    chosen = np.minimum((cumulative <= targets[:, None]).sum(axis=1), last)
    return ranked[rows[:, 0], np.where(greedy, 0, chosen)]  # a greedy row takes the likeliest


def rank_rows(logits: np.ndarray) -> np.ndarray:
    """`np.argsort(-logits, axis=1, kind="stable")` for float32 rows (likeliest first, ties in column
    order), several times faster: each logit's bits and its column packed into one int64 key, which
    numpy's vectorised sort of integers orders by value, then column."""
    if logits.dtype != np.float32:
        return np.argsort(-logits, axis=1, kind="stable")
    bits = (logits + np.float32(0)).view(np.int32).astype(np.int64)  # + 0: -0.0 becomes 0.0, its equal
    ascending = np.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # negative floats' bits count the wrong way
    shift = max(1, (logits.shape[1] - 1).bit_length())
    keys = (-ascending << shift) | np.arange(logits.shape[1])
    keys.sort(axis=1)
    return keys & ((1 << shift) - 1)


class _TorchOps:
    """Array operations for the step on torch tensors (batches, and any device)."""

    xp = torch

    @staticmethod
    def array(tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    @staticmethod
    def matrix(weight: torch.Tensor) -> torch.Tensor:
        """A (in, out) weight as `matmul` takes it."""
        return weight

    @staticmethod
    def matmul(x, weight, out) -> None:
        torch.matmul(x, weight, out=out)

    @staticmethod
    def tanh(x, out) -> None:
        torch.tanh(x, out=out)

    @staticmethod
    def lookup(table, ids: torch.Tensor, out) -> None:
        torch.index_select(table, 0, ids, out=out)


class _CpuBatchOps(_TorchOps):
    """Batches on the CPU: products through oneDNN (several times torch's MKL matmul at these shapes,
    see `onednn`), and tanh as 2*sigmoid(2x) - 1, because torch's CPU tanh is about ten times slower
    than its sigmoid (benchmarks/RESULTS.md)."""

    @staticmethod
    def matrix(weight: torch.Tensor) -> torch.Tensor:
        # Packed once for every batch, not per batch size: packing costs milliseconds, one layout serves
        # every batch of two rows or more as fast as its own, and a fixed one keeps a batch's digits
        # independent of the batches run before it.
        return onednn.pack(weight.t(), _PACKED_ROWS)

    @staticmethod
    def matmul(x, weight, out) -> None:
        out.copy_(onednn.linear(x, weight))

    @staticmethod
    def tanh(x, out) -> None:
        torch.mul(x, 2, out=out)
        torch.sigmoid(out, out=out)
        out.mul_(2).sub_(1)


class _NumpyOps:
    """The same operations in numpy, on arrays sharing the tensors' memory: for one row on the CPU,
    where each operation is tiny and numpy's per-call cost (and its BLAS's one-row products) are
    a fraction of torch's. Not for batches: there torch's products are as fast, and two thread
    pools contending for the cores are far slower (bench_sample.py)."""

    xp = np

    @staticmethod
    def array(tensor: torch.Tensor) -> np.ndarray:
        return tensor.numpy()

    @staticmethod
    def matrix(weight: torch.Tensor) -> np.ndarray:
        return weight.numpy()

    @staticmethod
    def matmul(x, weight, out) -> None:
        np.matmul(x, weight, out=out)

    @staticmethod
    def tanh(x, out) -> None:
        np.tanh(x, out=out)

    @staticmethod
    def lookup(table, ids, out) -> None:
        np.take(table, np.asarray(ids), axis=0, out=out)


# Below this many multiply-adds in a layer's recurrent product (batch x 4 hidden x hidden), the
# extra calls of `_CpuBatchOps` cost more than they save (bench_sample.py's plain-torch columns).
_ONEDNN_MIN_MACS = 2**20
_PACKED_ROWS = 64  # the batch oneDNN lays the weights out for (`_CpuBatchOps` runs batches of 2 rows and more)


def _ops_for(on_cpu: bool, batch: int, hidden: int):
    if not on_cpu:
        return _TorchOps
    if batch == 1:
        return _NumpyOps
    if batch * 4 * hidden * hidden >= _ONEDNN_MIN_MACS and onednn.available():
        return _CpuBatchOps
    return _TorchOps


_MATRICES = ("w_ih", "w_hh", "head_w")  # the weights `matmul` takes; the rest are added or looked up


@dataclass
class _Layer:
    """One layer's working memory for a batch, with the gate views cut once rather than per step."""

    h: Any
    c: Any
    gates: Any
    product: Any
    tmp: Any
    views: tuple


class RecurrentStep:
    """One step of the trained recurrent layers and output head, for a batch of single characters.

    Built for the per-character loop, where the cost is the weights' memory traffic plus the
    number of operations: biases are folded, the first layer's input product is tabulated per
    character (a row lookup), sigmoid gates are computed as tanh(x/2)/2 + 1/2 with the halving
    folded into their weights (so one tanh serves every gate, in numpy as in torch), and every
    buffer and view a step touches is made once per batch, by `start`, so a step allocates nothing.
    The step is written once against functions numpy and torch share (add, multiply, subtract with
    `out=`) plus the ops class's own matmul and tanh, and runs on whichever of `_NumpyOps` (one row on
    the CPU), `_CpuBatchOps` (larger batches on the CPU) or `_TorchOps` (the rest) suits the batch.
    """

    def __init__(self, model: CharRNN):
        rnn, config = model.rnn, model.config
        self.cell, self.hidden, self.layers = config.cell, config.hidden, config.layers
        self.on_cpu = model.device.type == "cpu"
        order, scale = self._gate_layout(config.cell, config.hidden, model.device)
        self.weights: dict[str, list[torch.Tensor]] = {"w_ih": [], "w_hh": [], "b_ih": [], "b_hh": []}
        for i in range(config.layers):
            b_ih, b_hh = getattr(rnn, f"bias_ih_l{i}"), getattr(rnn, f"bias_hh_l{i}")
            if config.cell != "gru":  # the GRU keeps b_hh apart: it sits inside r * (W_hn h + b_hn)
                b_ih, b_hh = b_ih + b_hh, torch.zeros_like(b_hh)
            for name, w in (("w_ih", getattr(rnn, f"weight_ih_l{i}")), ("w_hh", getattr(rnn, f"weight_hh_l{i}"))):
                self.weights[name].append((w[order] * scale[:, None]).t().contiguous())
            self.weights["b_ih"].append(b_ih[order] * scale)
            self.weights["b_hh"].append(b_hh[order] * scale)
        table = torch.addmm(self.weights["b_ih"][0], model.embed.weight, self.weights["w_ih"][0])
        self.weights["table"] = [table]  # (vocab, gates): the first layer's input product per character
        self.weights["head_w"] = [model.head.weight.t().contiguous()]
        self.weights["head_b"] = [model.head.bias.clone()]
        self.gate_width = self.weights["w_hh"][0].shape[1]
        self._weights_as: dict[type, dict] = {}  # the weights as each ops class takes them, made on first use

    @staticmethod
    def _gate_layout(cell: str, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Row order of the gates and their scale: LSTM i,f,g,o -> i,f,o,g; sigmoid gates halved."""
        blocks = {"lstm": [0, 1, 3, 2], "gru": [0, 1, 2], "rnn": [0]}[cell]
        sigmoid_blocks = {"lstm": 3, "gru": 2, "rnn": 0}[cell]
        order = torch.cat([torch.arange(b * n, (b + 1) * n) for b in blocks]).to(device)
        scale = torch.ones(len(blocks) * n, device=device)
        scale[: sigmoid_blocks * n] = 0.5
        return order, scale

    def start(self, state: State) -> dict:
        """Working memory for a batch, starting from a copy of `state` (layers, batch, hidden)."""
        batch, n = state[0].shape[1], self.hidden
        ops = _ops_for(self.on_cpu, batch, n)
        new = state[0].new_empty
        layers = []
        for i in range(self.layers):
            gates = new(batch, self.gate_width)
            c = state[1][i].clone() if self.cell == "lstm" else new(0)
            layers.append(_Layer(state[0][i].clone(), c, gates, new(batch, self.gate_width), new(batch, n), ()))
        logits = new(batch, self.weights["head_w"][0].shape[1])
        arrays = [_Layer(*(ops.array(t) for t in (x.h, x.c, x.gates, x.product, x.tmp)), views=()) for x in layers]
        for layer in arrays:
            g = layer.gates
            if self.cell == "lstm":  # sigmoid part, then i, f, o, g
                layer.views = (g[:, : 3 * n], g[:, :n], g[:, n : 2 * n], g[:, 2 * n : 3 * n], g[:, 3 * n :])
            elif self.cell == "gru":  # sigmoid part (reset, update), reset, update, new; and h's new part
                layer.views = (g[:, : 2 * n], g[:, :n], g[:, n : 2 * n], g[:, 2 * n :])
                layer.views += (layer.product[:, : 2 * n], layer.product[:, 2 * n :])
        return {
            "ops": ops,
            "tensors": layers,
            "layers": arrays,
            "weights": self._weights_for(ops),
            "logits": ops.array(logits),
        }

    def _weights_for(self, ops) -> dict:
        """The weights as `ops` takes them, made once (a server starts a batch whenever a row joins or leaves)."""
        if ops not in self._weights_as:
            self._weights_as[ops] = {
                name: [ops.matrix(w) if name in _MATRICES else ops.array(w) for w in ws]
                for name, ws in self.weights.items()
            }
        return self._weights_as[ops]

    def state(self, buffers: dict) -> State:
        layers = buffers["tensors"]
        if self.cell == "lstm":
            return torch.stack([x.h for x in layers]), torch.stack([x.c for x in layers])
        return (torch.stack([x.h for x in layers]),)

    def __call__(self, ids, buffers: dict):
        """Advance every row by one character; returns the logits buffer (batch, vocab), reused next step,
        as the ops' array (numpy for one row on the CPU, else torch)."""
        ops, w, layers = buffers["ops"], buffers["weights"], buffers["layers"]
        xp = ops.xp
        for i, layer in enumerate(layers):
            if i == 0:
                ops.lookup(w["table"][0], ids, layer.gates)
            else:
                ops.matmul(layers[i - 1].h, w["w_ih"][i], layer.gates)
                xp.add(layer.gates, w["b_ih"][i], out=layer.gates)
            ops.matmul(layer.h, w["w_hh"][i], layer.product)
            if self.cell == "lstm":
                self._lstm(ops, layer)
            elif self.cell == "gru":
                xp.add(layer.product, w["b_hh"][i], out=layer.product)
                self._gru(ops, layer)
            else:
                xp.add(layer.gates, layer.product, out=layer.gates)
                ops.tanh(layer.gates, layer.h)
        ops.matmul(layers[-1].h, w["head_w"][0], buffers["logits"])
        xp.add(buffers["logits"], w["head_b"][0], out=buffers["logits"])
        return buffers["logits"]

    @staticmethod
    def _sigmoid_from_halved(xp, x) -> None:
        """x holds tanh(z/2); make it sigmoid(z) = tanh(z/2)/2 + 1/2."""
        xp.multiply(x, 0.5, out=x)
        xp.add(x, 0.5, out=x)

    def _lstm(self, ops, layer: _Layer) -> None:
        xp = ops.xp
        sig, i, f, o, g = layer.views
        xp.add(layer.gates, layer.product, out=layer.gates)
        ops.tanh(layer.gates, layer.gates)
        self._sigmoid_from_halved(xp, sig)
        xp.multiply(layer.c, f, out=layer.c)  # c = f * c + i * g
        xp.multiply(i, g, out=layer.tmp)
        xp.add(layer.c, layer.tmp, out=layer.c)
        ops.tanh(layer.c, layer.tmp)  # h = o * tanh(c)
        xp.multiply(o, layer.tmp, out=layer.h)

    def _gru(self, ops, layer: _Layer) -> None:
        xp = ops.xp
        sig, r, z, candidate, h_sig, h_new = layer.views
        xp.add(sig, h_sig, out=sig)
        ops.tanh(sig, sig)
        self._sigmoid_from_halved(xp, sig)
        xp.multiply(r, h_new, out=h_new)  # n = tanh(x_n + r * (W_hn h + b_hn))
        xp.add(candidate, h_new, out=candidate)
        ops.tanh(candidate, candidate)
        xp.subtract(layer.h, candidate, out=layer.tmp)  # h' = n + z * (h - n)
        xp.multiply(z, layer.tmp, out=layer.tmp)
        xp.add(candidate, layer.tmp, out=layer.h)


class EnsembleStep:
    """`RecurrentStep` for an `Ensemble`: every member's step, then the log of their mean probabilities."""

    def __init__(self, ensemble: Ensemble):
        self.ensemble = ensemble
        self.steps = [RecurrentStep(member) for member in ensemble.members]

    def start(self, state: State) -> dict:
        parts = self.ensemble.split_state(state)
        members = [step.start(part) for step, part in zip(self.steps, parts, strict=True)]
        # One batch on one device: every member runs numpy (one row on the CPU) or every member torch.
        return {"ops": members[0]["ops"], "members": members}

    def state(self, buffers: dict) -> State:
        return tuple(part for step, b in zip(self.steps, buffers["members"], strict=True) for part in step.state(b))

    def __call__(self, ids, buffers: dict):
        return mean_log_probs([step(ids, b) for step, b in zip(self.steps, buffers["members"], strict=True)])


class Sampler:
    """Generates text from a trained model, or an ensemble of them; what `charrnn.load` returns."""

    def __init__(self, model: CharRNN | Ensemble, vocab: Vocab, info=None):
        self.model = model.eval()
        self.vocab = vocab
        self.info = info  # the checkpoint it came from (a list of them for an ensemble), if any
        self.device = model.device
        with torch.inference_mode():
            self._step = EnsembleStep(model) if isinstance(model, Ensemble) else RecurrentStep(model)

    @property
    def step(self) -> RecurrentStep | EnsembleStep:
        """The per-character step this sampler runs (`start`, then call it once a character)."""
        return self._step

    @torch.inference_mode()
    def warm(self, prime: str, num_samples: int = 1) -> tuple[torch.Tensor, State]:
        """State after all but the last prime character, and that last character (batch of them): where
        sampling starts. A prime is read after the vocabulary's lead-in (a line break); an empty prime
        is the lead-in alone (or, without one, the vocabulary's first character)."""
        return self.warm_many([prime] * num_samples)

    @torch.inference_mode()
    def warm_many(self, primes: list[str]) -> tuple[torch.Tensor, State]:
        """`warm` for several primes of one length together: one batch through the fused layers, in
        which a prime asked for by several rows (a request's samples) is read once."""
        lead, first = self.vocab.lead_in, self.vocab.chars[0]
        rows_of = {prime: index for index, prime in enumerate(dict.fromkeys(primes))}
        encoded = [self.vocab.encode(lead + prime or first).astype("int64") for prime in rows_of]
        ids = torch.as_tensor(np.stack(encoded), device=self.device)
        state = self.model.init_state(len(encoded), self.device)
        if ids.shape[1] > 1:
            _, state = self.model(ids[:, :-1], state)
        rows = torch.tensor([rows_of[prime] for prime in primes], device=self.device)
        return ids[rows, -1], tuple(part.index_select(1, rows) for part in state)

    def stream_batch(
        self, prime: str = "", max_new_chars: int = 200, num_samples: int = 1, seed: int | None = None, **options
    ) -> Iterator[list[str]]:
        """Yields, per step, the next character of each of `num_samples` samples.

        Bad arguments and unknown prime characters raise here, before anything is yielded.
        """
        options = SamplingOptions(**options)
        if max_new_chars < 0:
            raise CharRNNError(f"max_new_chars (--length) must not be negative, got {max_new_chars}")
        if num_samples <= 0:
            raise CharRNNError(f"num_samples (--num-samples) must be positive, got {num_samples}")
        seed = seed if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1
        with torch.inference_mode():
            ids, state = self.warm(prime, num_samples)
            buffers = self._step.start(state)
        if buffers["ops"] is _NumpyOps:
            return self._row_steps(ids.numpy().copy(), buffers, max_new_chars, options, np.random.default_rng(seed))
        generator = torch.Generator(self.device)
        generator.manual_seed(seed)
        return self._steps(ids, buffers, max_new_chars, options, generator)

    @torch.inference_mode()
    def _steps(self, ids, buffers, max_new_chars, options, generator) -> Iterator[list[str]]:
        chars = self.vocab.chars
        for _ in range(max_new_chars):
            ids = pick_next(self._step(ids, buffers), options, generator)
            yield [chars[i] for i in ids.tolist()]

    def _row_steps(self, ids: np.ndarray, buffers, max_new_chars, options, rng) -> Iterator[list[str]]:
        """The batch-1 loop on the CPU, numpy throughout: no torch call per character, so neither its
        per-call cost nor its thread pool waking beside numpy's (which costs more than the choice)."""
        chars = self.vocab.chars
        for _ in range(max_new_chars):
            ids[0] = pick_next_row(self._step(ids, buffers)[0], options, rng)
            yield [chars[ids[0]]]

    def stream(self, prime: str = "", max_new_chars: int = 200, temperature: float = 1.0, top_k: int = 0,
               top_p: float = 1.0, seed: int | None = None, greedy: bool = False,
               stop: Sequence[str] = ()) -> Iterator[str]:  # fmt: skip
        """Yields the new characters as they are made (arguments are checked at the call). With `stop`,
        the text ends before the first stop string, and what may begin one comes once it is decided."""
        options = dict(temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy)
        steps = self.stream_batch(prime, max_new_chars, 1, seed, **options)
        return until_stop((step_chars[0] for step_chars in steps), stop)

    def generate(self, prime: str = "", max_new_chars: int = 200, temperature: float = 1.0, top_k: int = 0,
                 top_p: float = 1.0, seed: int | None = None, greedy: bool = False,
                 stop: Sequence[str] = ()) -> str:  # fmt: skip
        """The `max_new_chars` characters that follow `prime` (the prime itself is not repeated), cut
        before the first of the `stop` strings."""
        return "".join(self.stream(prime, max_new_chars, temperature, top_k, top_p, seed, greedy, stop))

    def generate_many(self, prime: str = "", max_new_chars: int = 200, num_samples: int = 2,
                      seed: int | None = None, stop: Sequence[str] = (), **options) -> list[str]:  # fmt: skip
        """`num_samples` continuations of `prime`, drawn together in one batch, each cut at a `stop`."""
        columns = list(self.stream_batch(prime, max_new_chars, num_samples, seed, **options))
        return [cut_at_stop("".join(step[i] for step in columns), stop) for i in range(num_samples)]

    @torch.inference_mode()
    def score(self, text: str, top: int = 0, progress=None) -> TextScore:
        """How likely `text` is under the model: each character's log-probability given those before it
        (the first has no context and is not scored), and with `top` the likeliest alternatives."""
        return score_text(self.model, self.vocab, text, top, progress)
