"""Continuous batching: one thread owns the model and advances every active row one character a tick.

A request (`Job`) asks for `num_samples` rows. Its prime is read through the fused layers when it is
admitted (`Sampler.warm`), and its rows join the running batch at the next tick; rows leave the batch
the moment they finish, stop or are cancelled. While one row runs alone it takes the sampler's one-row
path (numpy) with its own generator, so a seeded one-sample request served alone yields exactly what
`charrnn sample --seed` prints; once rows share a batch, the batched products may round differently,
so a request's text can then differ from its alone text (the same distribution, not the same digits).
Each row draws from its own generator, seeded by the request's seed: no row's randomness depends on
what else is in the batch. The asyncio side reads each job's events from a deque it is woken for.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import CharRNNError
from ..model import State
from ..sample import Sampler, SamplingOptions, pick_next_row


class Busy(Exception):
    """The batch and the queue are full: the caller should answer 429."""


@dataclass(eq=False)  # a job is itself, not its fields: jobs go in sets
class Job:
    """One request: what to generate, and where its characters go."""

    prime: str
    max_new_chars: int
    options: SamplingOptions
    seed: int | None = None
    num_samples: int = 1
    stop: tuple[str, ...] = ()
    logprobs: int = 0  # the top N characters with their log-probabilities at each step; 0: none
    wake: Callable[[], None] = lambda: None  # called (from the model thread) when events are waiting
    events: collections.deque = field(default_factory=collections.deque)
    cancelled: threading.Event = field(default_factory=threading.Event)
    created: float = field(default_factory=time.perf_counter)
    started: float | None = None  # when its prime had been read (admission)
    first_char: float | None = None
    rows_left: int = 0

    def push(self, event: tuple) -> None:
        self.events.append(event)

    def cancel(self) -> None:
        self.cancelled.set()


class StopMatcher:
    """Holds back text that may be the start of a stop string until it is decided; ends at the first stop."""

    def __init__(self, stops: tuple[str, ...]):
        self.stops = tuple(s for s in stops if s)
        self.text = ""
        self.sent = 0

    def push(self, chars: str) -> tuple[str, bool]:
        """(text that may go out now, whether a stop string was reached); the stop itself never goes out."""
        self.text += chars
        hits = [self.text.find(s, max(0, self.sent - len(s) + 1)) for s in self.stops]
        hits = [h for h in hits if h >= 0]
        if hits:
            end = min(hits)
            out, self.sent = self.text[self.sent : end], end
            return out, True
        hold = max((k for s in self.stops for k in range(1, len(s)) if self.text.endswith(s[:k])), default=0)
        end = max(self.sent, len(self.text) - hold)
        out, self.sent = self.text[self.sent : end], end
        return out, False

    def flush(self) -> str:
        out, self.sent = self.text[self.sent :], len(self.text)
        return out


@dataclass
class _Row:
    job: Job
    index: int
    state: State  # this row's state, (layers, 1, hidden) each, while it is outside the running batch
    next_id: int
    rng: np.random.Generator
    stops: StopMatcher
    made: int = 0  # characters generated (stop strings included)


class Scheduler:
    """Owns the model; `submit` jobs from any thread, read their events from `job.events`."""

    def __init__(self, sampler: Sampler, max_batch: int, max_queue: int, on_tick: Callable[[int], None] | None = None):
        self.sampler, self.max_batch, self.max_queue = sampler, max_batch, max_queue
        self.on_tick = on_tick or (lambda rows: None)
        self._pending: collections.deque[Job] = collections.deque()
        self._active: list[_Row] = []
        self._wakeup = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="charrnn-scheduler", daemon=True)
        self.error: BaseException | None = None

    # -- the other threads' side --------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify()
        self._thread.join(timeout)

    @property
    def active_rows(self) -> int:
        return len(self._active)

    @property
    def queued_rows(self) -> int:
        return sum(job.num_samples for job in list(self._pending))

    def submit(self, job: Job) -> None:
        """Queue `job`, or raise `Busy` when its rows fit neither the batch nor the queue."""
        if job.num_samples > self.max_batch:
            raise CharRNNError(f"num_samples {job.num_samples} is more than the server's --max-batch {self.max_batch}")
        with self._wakeup:
            if self.active_rows + self.queued_rows + job.num_samples > self.max_batch + self.max_queue:
                raise Busy
            job.rows_left = job.num_samples
            self._pending.append(job)
            self._wakeup.notify()

    # -- the model thread ---------------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            with torch.inference_mode():
                self._run()
        except BaseException as exc:  # a bug: every job still waiting is told, none hangs
            self.error = exc
            for row in self._active:
                self._finish(row, "error")
            for job in self._pending:
                job.push(("error", str(exc)))
                job.wake()

    def _run(self) -> None:
        buffers, ids = None, None
        synced = False  # whether `buffers` hold exactly the active rows, in order, with their current state
        while True:
            admitted = self._admit()
            if admitted is None:
                return
            rows = [row for job in admitted for row in self._rows_for(job)]
            cancelled = [row for row in self._active if row.job.cancelled.is_set()]
            if (rows or cancelled) and synced:
                self._save_states(buffers)
                synced = False
            for row in cancelled:
                self._finish(row, "cancelled")
            self._active = [row for row in self._active if not row.job.cancelled.is_set()] + rows
            if not self._active:
                continue
            if not synced:
                buffers, ids = self._regroup()
                synced = True
            logits = self.sampler.step(ids, buffers)
            logits = np.asarray(logits.float().cpu()) if torch.is_tensor(logits) else logits
            synced = not self._advance(logits, ids, buffers)
            self.on_tick(len(self._active))

    def _admit(self) -> list[Job] | None:
        """Jobs whose rows now fit the batch (waiting for work when there is none); None when stopping."""
        with self._wakeup:
            while not self._stopping and not self._pending and not self._active:
                self._wakeup.wait()
            if self._stopping:
                return None
            admitted = []
            while (
                self._pending
                and len(self._active) + sum(j.num_samples for j in admitted) + self._pending[0].num_samples
                <= self.max_batch
            ):
                admitted.append(self._pending.popleft())
            return admitted

    def _rows_for(self, job: Job) -> list[_Row]:
        if job.cancelled.is_set():
            self._end_job(job, ["cancelled"] * job.num_samples)
            return []
        try:
            last, state = self.sampler.warm(job.prime, job.num_samples)
        except CharRNNError as exc:
            job.push(("error", str(exc)))
            job.wake()
            return []
        job.started = time.perf_counter()
        seed = job.seed if job.seed is not None else int.from_bytes(os.urandom(8), "little") >> 1
        rows = []
        for index in range(job.num_samples):
            rng = np.random.default_rng(seed if index == 0 else [seed, index])
            row_state = tuple(s[:, index : index + 1].clone() for s in state)
            rows.append(_Row(job, index, row_state, int(last[index]), rng, StopMatcher(job.stop)))
        if job.max_new_chars == 0:
            for row in rows:
                self._finish(row, "length")
            return []
        return rows

    def _regroup(self):
        """Working memory for the active rows, from each row's own state."""
        state = tuple(torch.cat(parts, dim=1) for parts in zip(*(row.state for row in self._active), strict=True))
        buffers = self.sampler.step.start(state)
        ids = np.array([row.next_id for row in self._active], dtype=np.int64)
        if buffers["ops"].xp is not np:
            ids = torch.from_numpy(ids).to(self.sampler.device)
        return buffers, ids

    def _save_states(self, buffers) -> None:
        """Copy each active row's state out of the running batch (before the batch changes)."""
        if buffers is None:
            return
        state = self.sampler.step.state(buffers)
        for index, row in enumerate(self._active):
            row.state = tuple(s[:, index : index + 1].clone() for s in state)

    def _advance(self, logits: np.ndarray, ids, buffers) -> bool:
        """Pick each row's next character, hand it out; returns whether any row left the batch."""
        chars = self.sampler.vocab.chars
        finished = []
        for index, row in enumerate(self._active):
            job = row.job
            choice = pick_next_row(logits[index], job.options, row.rng)
            ids[index] = choice
            row.next_id, row.made = choice, row.made + 1
            text, stopped = row.stops.push(chars[choice])
            entry = _logprob_entry(logits[index], choice, job.logprobs, chars) if job.logprobs else None
            if job.first_char is None:
                job.first_char = time.perf_counter()
            if text or entry:
                job.push(("text", row.index, text, entry))
            if stopped or row.made >= job.max_new_chars:
                finished.append((row, "stop" if stopped else "length"))
        touched = {row.job for row in self._active}
        if finished:
            self._save_states(buffers)
            for row, reason in finished:
                self._finish(row, reason)
            gone = {id(row) for row, _ in finished}
            self._active = [r for r in self._active if id(r) not in gone]
        for job in touched:
            job.wake()
        return bool(finished)

    def _finish(self, row: _Row, reason: str) -> None:
        tail = row.stops.flush() if reason == "length" else ""
        if tail:
            row.job.push(("text", row.index, tail, None))
        row.job.push(("done", row.index, reason, row.made))
        row.job.rows_left -= 1
        if row.job.rows_left <= 0:
            row.job.push(("end",))
        row.job.wake()

    def _end_job(self, job: Job, reasons: list[str]) -> None:
        for index, reason in enumerate(reasons):
            job.push(("done", index, reason, 0))
        job.push(("end",))
        job.wake()


def _logprob_entry(logits: np.ndarray, choice: int, top: int, chars: str) -> dict:
    """The chosen character's log-probability under the model (temperature 1) and the `top` likeliest."""
    shifted = logits.astype(np.float64) - logits.max()
    log_probs = shifted - np.log(np.exp(shifted).sum())
    best = np.argsort(-log_probs, kind="stable")[:top]
    return {
        "char": chars[choice],
        "logprob": float(log_probs[choice]),
        "top": [[chars[i], float(log_probs[i])] for i in best],
    }
