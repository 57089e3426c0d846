"""A row: one sample of a job while the scheduler runs it, with its own state, generator and stop
matcher, and the characters it made that its reader has not taken yet."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..generate.stops import StopMatcher
from ..model.network import State
from .job import Job
from .protocol import Text

DRAWS = 64  # uniforms drawn from a row's generator at a time: the same stream as one draw per call


@dataclass(eq=False)
class Row:
    job: Job
    index: int
    state: State  # this row's state, (layers, 1, hidden) each, while it is outside the running batch
    next_id: int
    rng: np.random.Generator
    stops: StopMatcher
    made: int = 0  # characters generated (stop strings included)
    pending: list = field(default_factory=list)  # characters decided but not yet handed to the reader
    entries: list = field(default_factory=list)  # their logprob entries, when asked for
    draws: np.ndarray = field(default_factory=lambda: np.empty(0))
    drawn: int = 0
    drained: int = 0  # how much of the batch's trail of choices is already in `pending`

    def random(self) -> float:
        """`draw`, under the name `pick_next_row` calls on its generator."""
        return self.draw()

    def draw(self) -> float:
        """The row's next uniform, from its own generator (in blocks, which give the same numbers)."""
        if self.drawn == len(self.draws):
            self.draws, self.drawn = self.rng.random(DRAWS), 0
        self.drawn += 1
        return self.draws[self.drawn - 1]

    def upcoming(self) -> np.ndarray:
        """The row's next `DRAWS` uniforms, without using them up: what is left of its block, then more."""
        left = self.draws[self.drawn :]
        if len(left) < DRAWS:
            left = np.concatenate([left, self.rng.random(DRAWS - len(left))])
        self.draws, self.drawn = left, 0
        return left[:DRAWS]

    def flush(self) -> None:
        text = "".join(self.pending)
        if text or self.entries:
            self.job.push(Text(self.index, text, self.entries))
        self.pending, self.entries = [], []


def logprob_entry(logits: np.ndarray, choice: int, top: int, chars: str) -> dict:
    """The chosen character's log-probability under the model (temperature 1) and the `top` likeliest."""
    shifted = logits.astype(np.float64) - logits.max()
    log_probs = shifted - np.log(np.exp(shifted).sum())
    best = np.argsort(-log_probs, kind="stable")[:top]
    return {
        "char": chars[choice],
        "logprob": float(log_probs[choice]),
        "top": [[chars[i], float(log_probs[i])] for i in best],
    }
