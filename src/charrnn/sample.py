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
    """One step of the trained recurrent layers and output head, for a batch of single characters."""

    def __init__(self, model: CharRNN):
        rnn, config = model.rnn, model.config
        self.cell = config.cell
        self.layers = [
            (getattr(rnn, f"weight_ih_l{i}").t(), getattr(rnn, f"weight_hh_l{i}").t(),
             getattr(rnn, f"bias_ih_l{i}"), getattr(rnn, f"bias_hh_l{i}"))
            for i in range(config.layers)
        ]  # fmt: skip
        w_ih0, _, b_ih0, _ = self.layers[0]
        self.input_table = torch.addmm(b_ih0, model.embed.weight, w_ih0)  # (vocab, gates)
        self.head_w, self.head_b = model.head.weight.t(), model.head.bias

    def __call__(self, ids: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        hs = list(state[0].unbind(0))
        cs = list(state[1].unbind(0)) if self.cell == "lstm" else None
        x = None
        for i, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.layers):
            gates_in = self.input_table[ids] if i == 0 else torch.addmm(b_ih, x, w_ih)
            if self.cell == "lstm":
                hs[i], cs[i] = self._lstm(gates_in + b_hh, hs[i] @ w_hh, cs[i])
            elif self.cell == "gru":
                hs[i] = self._gru(gates_in, torch.addmm(b_hh, hs[i], w_hh), hs[i])
            else:
                hs[i] = torch.tanh(gates_in + torch.addmm(b_hh, hs[i], w_hh))
            x = hs[i]
        logits = torch.addmm(self.head_b, x, self.head_w)
        new_state = (torch.stack(hs), torch.stack(cs)) if cs is not None else (torch.stack(hs),)
        return logits, new_state

    @staticmethod
    def _lstm(gates_in, gates_h, c):
        i, f, g, o = (gates_in + gates_h).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    @staticmethod
    def _gru(gates_in, gates_h, h):
        i_r, i_z, i_n = gates_in.chunk(3, dim=-1)
        h_r, h_z, h_n = gates_h.chunk(3, dim=-1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return n + z * (h - n)


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
        return self._steps(ids, state, max_new_chars, options, generator)

    @torch.inference_mode()
    def _steps(self, ids, state, max_new_chars, options, generator) -> Iterator[list[str]]:
        chars = self.vocab.chars
        for _ in range(max_new_chars):
            logits, state = self._step(ids, state)
            ids = pick_next(logits, options, generator)
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
