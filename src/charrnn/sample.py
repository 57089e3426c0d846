"""`Sampler`: text from a trained model, one character at a time from the carried state.

The prime runs once through the fused recurrent layers to warm the state; after that each new
character costs one step of a hand-written cell (the same weights, read straight from the
`nn.LSTM`/`nn.GRU`/`nn.RNN`), never a re-run of the prefix. The first layer's input projection is
precomputed per character (embedding x input weights + biases), so feeding a character is a row
lookup. Several samples are drawn together as one batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .errors import CharRNNError
from .model import CharRNN, State
from .vocab import Vocab


@dataclass(frozen=True)
class SamplingOptions:
    temperature: float = 1.0
    top_k: int = 0  # 0: no top-k cut
    top_p: float = 1.0  # 1: no nucleus cut
    greedy: bool = False

    def __post_init__(self):
        if self.temperature < 0:
            raise CharRNNError(f"--temperature must not be negative, got {self.temperature}")
        if self.top_k < 0:
            raise CharRNNError(f"--top-k must not be negative, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise CharRNNError(f"--top-p must be in (0, 1], got {self.top_p}")

    @property
    def is_greedy(self) -> bool:
        return self.greedy or self.temperature == 0


def pick_next(logits: torch.Tensor, options: SamplingOptions, generator: torch.Generator) -> torch.Tensor:
    """Next ids (batch,) from logits (batch, vocab) under temperature, top-k and top-p."""
    if options.is_greedy:
        return logits.argmax(dim=-1)
    logits = logits / options.temperature
    if 0 < options.top_k < logits.shape[-1]:
        kth = torch.topk(logits, options.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if options.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a character once the ones before it already hold top_p of the mass (the first always stays).
        drop = (torch.cumsum(probs, dim=-1) - probs) >= options.top_p
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class RecurrentStep:
    """One step of the trained recurrent layers and output head, for a batch of single characters.

    Built for the per-character loop, where the cost is mostly the number of operations, not
    their size: the weights are rearranged once (biases folded, the first layer's input product
    tabulated per character, LSTM gates reordered to i,f,o,g with i,f,o scaled by 1/2 so that one
    tanh serves all four: sigmoid(x) = tanh(x/2)/2 + 1/2), and every buffer a step writes is
    allocated once per batch, by `start`, so a step allocates nothing.
    """

    def __init__(self, model: CharRNN):
        rnn, config = model.rnn, model.config
        self.cell, self.hidden = config.cell, config.hidden
        gate_order, scale = self._gate_layout(config.cell, config.hidden)
        self.w_ih, self.w_hh, self.b_ih, self.b_hh = [], [], [], []
        for i in range(config.layers):
            w_ih, w_hh = getattr(rnn, f"weight_ih_l{i}"), getattr(rnn, f"weight_hh_l{i}")
            b_ih, b_hh = getattr(rnn, f"bias_ih_l{i}"), getattr(rnn, f"bias_hh_l{i}")
            if config.cell != "gru":  # the GRU keeps b_hh apart: it sits inside r * (W_hn h + b_hn)
                b_ih, b_hh = b_ih + b_hh, torch.zeros_like(b_hh)
            self.w_ih.append((w_ih[gate_order] * scale[:, None]).t().contiguous())
            self.w_hh.append((w_hh[gate_order] * scale[:, None]).t().contiguous())
            self.b_ih.append(b_ih[gate_order] * scale)
            self.b_hh.append(b_hh[gate_order] * scale)
        self.input_table = torch.addmm(self.b_ih[0], model.embed.weight, self.w_ih[0])  # (vocab, gates)
        self.head_w, self.head_b = model.head.weight.t().contiguous(), model.head.bias.clone()

    @staticmethod
    def _gate_layout(cell: str, hidden: int) -> tuple[torch.Tensor, torch.Tensor]:
        if cell == "lstm":  # PyTorch's i,f,g,o -> i,f,o,g; i,f,o halved for the tanh form of sigmoid
            blocks = [0, 1, 3, 2]
            order = torch.cat([torch.arange(b * hidden, (b + 1) * hidden) for b in blocks])
            scale = torch.cat([torch.full((3 * hidden,), 0.5), torch.ones(hidden)])
            return order, scale
        width = {"gru": 3, "rnn": 1}[cell] * hidden
        return torch.arange(width), torch.ones(width)

    def start(self, state: State) -> dict:
        """Working buffers for a batch, holding a copy of `state` (layers, batch, hidden)."""
        batch = state[0].shape[1]
        gates = self.w_hh[0].shape[1]
        buffers = {
            "h": [s.clone() for s in state[0]],
            "gates": [state[0].new_empty(batch, gates) for _ in self.w_hh],
            "tmp": [state[0].new_empty(batch, self.hidden) for _ in self.w_hh],
            "logits": state[0].new_empty(batch, self.head_w.shape[1]),
        }
        if self.cell == "lstm":
            buffers["c"] = [s.clone() for s in state[1]]
        if self.cell == "gru":
            buffers["gh"] = [state[0].new_empty(batch, gates) for _ in self.w_hh]
        return buffers

    def state(self, buffers: dict) -> State:
        if self.cell == "lstm":
            return torch.stack(buffers["h"]), torch.stack(buffers["c"])
        return (torch.stack(buffers["h"]),)

    def __call__(self, ids: torch.Tensor, buffers: dict) -> torch.Tensor:
        """Advance every row by one character; returns the logits buffer (batch, vocab), reused next step."""
        h = buffers["h"]
        for i in range(len(self.w_hh)):
            gates = buffers["gates"][i]
            if i == 0:
                torch.index_select(self.input_table, 0, ids, out=gates)
            else:
                torch.addmm(self.b_ih[i], h[i - 1], self.w_ih[i], out=gates)
            if self.cell == "lstm":
                self._lstm(gates, h[i], buffers["c"][i], buffers["tmp"][i], self.w_hh[i])
            elif self.cell == "gru":
                self._gru(gates, buffers["gh"][i], h[i], buffers["tmp"][i], self.w_hh[i], self.b_hh[i])
            else:
                gates.addmm_(h[i], self.w_hh[i])
                torch.tanh(gates, out=h[i])
        return torch.addmm(self.head_b, h[-1], self.head_w, out=buffers["logits"])

    def _lstm(self, gates, h, c, tmp, w_hh):
        n = self.hidden
        gates.addmm_(h, w_hh).tanh_()
        gates[:, : 3 * n].mul_(0.5).add_(0.5)  # i, f, o: tanh(x/2)/2 + 1/2 = sigmoid(x)
        i, f, o, g = gates[:, :n], gates[:, n : 2 * n], gates[:, 2 * n : 3 * n], gates[:, 3 * n :]
        c.mul_(f).addcmul_(i, g)
        torch.tanh(c, out=tmp)
        torch.mul(o, tmp, out=h)

    def _gru(self, gates_in, gates_h, h, tmp, w_hh, b_hh):
        n = self.hidden
        torch.addmm(b_hh, h, w_hh, out=gates_h)
        rz = gates_in[:, : 2 * n].add_(gates_h[:, : 2 * n]).sigmoid_()
        r, z = rz[:, :n], rz[:, n:]
        candidate = gates_in[:, 2 * n :].addcmul_(r, gates_h[:, 2 * n :]).tanh_()
        torch.sub(h, candidate, out=tmp)  # h' = n + z * (h - n)
        torch.addcmul(candidate, z, tmp, out=h)


class Sampler:
    """Generates text from a trained model; what `charrnn.load` returns."""

    def __init__(self, model: CharRNN, vocab: Vocab, info=None):
        self.model = model.eval()
        self.vocab = vocab
        self.info = info  # the checkpoint it came from, if any
        self.device = model.head.weight.device
        with torch.inference_mode():
            self._step = RecurrentStep(model)

    def _warm(self, prime: str, num_samples: int) -> tuple[torch.Tensor, State]:
        """State after all but the last prime character, and that last character (batch of them)."""
        if not prime:
            prime = "\n" if "\n" in self.vocab.chars else self.vocab.chars[0]
        ids = torch.as_tensor(self.vocab.encode(prime).astype("int64"), device=self.device)
        ids = ids.unsqueeze(0).expand(num_samples, -1)
        state = self.model.init_state(num_samples, self.device)
        if ids.shape[1] > 1:
            _, state = self.model(ids[:, :-1], state)
        return ids[:, -1], state

    def stream_batch(
        self, prime: str = "", max_new_chars: int = 200, num_samples: int = 1, seed: int | None = None, **options
    ) -> Iterator[list[str]]:
        """Yields, per step, the next character of each of `num_samples` samples.

        Bad arguments and unknown prime characters raise here, before anything is yielded.
        """
        options = SamplingOptions(**options)
        if max_new_chars < 0:
            raise CharRNNError(f"--length must not be negative, got {max_new_chars}")
        if num_samples <= 0:
            raise CharRNNError(f"--num-samples must be positive, got {num_samples}")
        generator = torch.Generator(self.device)
        generator.manual_seed(seed if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1)
        with torch.inference_mode():
            ids, state = self._warm(prime, num_samples)
            buffers = self._step.start(state)
        return self._steps(ids, buffers, max_new_chars, options, generator)

    @torch.inference_mode()
    def _steps(self, ids, buffers, max_new_chars, options, generator) -> Iterator[list[str]]:
        chars = self.vocab.chars
        for _ in range(max_new_chars):
            ids = pick_next(self._step(ids, buffers), options, generator)
            yield [chars[i] for i in ids.tolist()]

    def stream(self, prime: str = "", max_new_chars: int = 200, temperature: float = 1.0, top_k: int = 0,
               top_p: float = 1.0, seed: int | None = None, greedy: bool = False) -> Iterator[str]:  # fmt: skip
        """Yields the new characters one at a time, as they are made (arguments are checked at the call)."""
        options = dict(temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy)
        steps = self.stream_batch(prime, max_new_chars, 1, seed, **options)
        return (step_chars[0] for step_chars in steps)

    def generate(self, prime: str = "", max_new_chars: int = 200, temperature: float = 1.0, top_k: int = 0,
                 top_p: float = 1.0, seed: int | None = None, greedy: bool = False) -> str:  # fmt: skip
        """The `max_new_chars` characters that follow `prime` (the prime itself is not repeated)."""
        return "".join(self.stream(prime, max_new_chars, temperature, top_k, top_p, seed, greedy))

    def generate_many(self, prime: str = "", max_new_chars: int = 200, num_samples: int = 2,
                      seed: int | None = None, **options) -> list[str]:  # fmt: skip
        """`num_samples` continuations of `prime`, drawn together in one batch."""
        columns = list(self.stream_batch(prime, max_new_chars, num_samples, seed, **options))
        return ["".join(step[i] for step in columns) for i in range(num_samples)]
