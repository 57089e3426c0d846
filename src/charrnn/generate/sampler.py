"""`Sampler`: text from a trained model, one character at a time from the carried state.

The prime runs once through the fused recurrent layers to warm the state; after that each new
character costs one step of a hand-written cell (the same weights, read straight from the
`nn.LSTM`/`nn.GRU`/`nn.RNN`), never a re-run of the prefix. The first layer's input projection is
precomputed per character (embedding x input weights + biases), so feeding a character is a row
lookup (`step.py`). Several samples are drawn together as one batch. An `Ensemble` steps each of its
models so, and samples from the mean of their probabilities; the choice itself is `picking.py`'s.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ..data.vocab import Vocab
from ..errors import CharRNNError
from ..model.ensemble import Ensemble
from ..model.network import CharRNN, State
from .picking import SamplingOptions, pick_next, pick_next_row
from .scoring import TextScore, score_text
from .step import EnsembleStep, RecurrentStep
from .stops import cut_at_stop, until_stop


class Sampler:
    """Generates text from a trained model, or an ensemble of them; what `charrnn.load` returns."""

    def __init__(self, model: CharRNN | Ensemble, vocab: Vocab, info=None):
        self.model = model.eval()
        self.vocab = vocab
        self.info = info  # the checkpoint it came from (a list of them for an ensemble), if any
        self.device = model.device
        self.held: dict[tuple[int, int], float] = {}  # (layer from 1, unit): value, held while sampling
        with torch.inference_mode():
            self._step = EnsembleStep(model) if isinstance(model, Ensemble) else RecurrentStep(model)

    def clamp(self, held: dict[tuple[int, int], float]) -> None:
        """Hold units at values while sampling, to see what they do: {(layer, unit): value}, layers counted
        from 1, units from 0. The unit's state (h, and an LSTM's cell c too) is set to the value before the
        first step and after every step; {} lets go."""
        if held and isinstance(self.model, Ensemble):
            raise CharRNNError("--clamp holds one model's unit: drop --with")
        config = getattr(self.model, "config", None)
        for layer, unit in held:
            if not (1 <= layer <= config.layers and 0 <= unit < config.hidden):
                raise CharRNNError(
                    f"--clamp {layer}:{unit}: this model has layers 1 to {config.layers}, units 0 to {config.hidden - 1}"
                )
        self.held = dict(held)

    def _hold(self, buffers: dict) -> None:
        for (layer, unit), value in self.held.items():
            memory = buffers["layers"][layer - 1]
            memory.h[:, unit] = value
            if self._step.cell == "lstm":
                memory.c[:, unit] = value

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
            self._hold(buffers)
        if buffers["ops"].xp is np:  # one row on the CPU
            return self._row_steps(ids.numpy().copy(), buffers, max_new_chars, options, np.random.default_rng(seed))
        generator = torch.Generator(self.device)
        generator.manual_seed(seed)
        return self._steps(ids, buffers, max_new_chars, options, generator)

    @torch.inference_mode()
    def _steps(self, ids, buffers, max_new_chars, options, generator) -> Iterator[list[str]]:
        chars = self.vocab.chars
        for _ in range(max_new_chars):
            ids = pick_next(self._step(ids, buffers), options, generator)
            self._hold(buffers)
            yield [chars[i] for i in ids.tolist()]

    def _row_steps(self, ids: np.ndarray, buffers, max_new_chars, options, rng) -> Iterator[list[str]]:
        """The batch-1 loop on the CPU, numpy throughout: no torch call per character, so neither its
        per-call cost nor its thread pool waking beside numpy's (which costs more than the choice)."""
        chars = self.vocab.chars
        for _ in range(max_new_chars):
            ids[0] = pick_next_row(self._step(ids, buffers)[0], options, rng)
            self._hold(buffers)
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
