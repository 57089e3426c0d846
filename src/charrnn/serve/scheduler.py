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

import numpy as np
import torch

from ..errors import CharRNNError
from ..generate.picking import pick_next_row, pick_next_rows
from ..generate.sampler import Sampler
from ..generate.stops import StopMatcher
from ..model.network import State
from .job import Job, check_room
from .primes import PrimeCache
from .protocol import Done, End, Failed
from .rows import DRAWS, Row, logprob_entry


class Scheduler:
    """Owns the model; `submit` jobs from any thread, read their events from `job.events`."""

    def __init__(
        self,
        sampler: Sampler,
        max_batch: int,
        max_queue: int,
        prime_cache: int = 256,
        on_tick: Callable[[int], None] | None = None,
        receive: Callable[[bool], None] | None = None,
    ):
        """`on_tick(rows)` is called after each tick; `receive(idle)`, where given, at the top of the loop,
        from the loop's thread: it delivers what other processes asked for (`submit`, `Job.cancel`,
        `Job.drained`, `stop`), and, when `idle`, waits until there is something. `prime_cache`: how many
        primes' states to keep for requests that repeat one (`PrimeCache`)."""
        self.sampler, self.max_batch, self.max_queue = sampler, max_batch, max_queue
        self.primes = PrimeCache(prime_cache)
        self.on_tick = on_tick or (lambda rows: None)
        self.receive = receive or (lambda idle: None)
        self._pending: collections.deque[Job] = collections.deque()
        self._active: list[Row] = []
        self._wakeup = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self.run, name="charrnn-scheduler", daemon=True)
        self.error: BaseException | None = None
        self._admitting: list[Job] = []  # taken from the queue, rows not yet running
        self._drained: collections.deque[Job] = collections.deque()  # readers that asked for more (any thread)
        self._cancels: collections.deque[Job] = collections.deque()  # jobs cancelled since the last tick (any thread)
        self._waiting: set[Job] = set()  # jobs of the batch whose readers wait for characters

    # -- the other threads' side --------------------------------------------------------------------

    def start(self) -> None:
        """Run the scheduler on a thread of its own (`run` runs it on the caller's)."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Make `run` return once its current tick is done (rows still running are left as they are)."""
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def active_rows(self) -> int:
        return len(self._active)

    @property
    def queued_rows(self) -> int:
        return sum(job.num_samples for job in list(self._pending))

    @property
    def has_work(self) -> bool:
        """Rows to advance, jobs waiting, or a stop to obey: the loop must not wait."""
        return bool(self._stopping or self._pending or self._active)

    def submit(self, job: Job) -> None:
        """Queue `job`, or raise `Busy` when its rows fit neither the batch nor the queue."""
        with self._wakeup:
            if self.error is not None:
                raise CharRNNError(f"the model loop failed: {self.error!r}")
            check_room(job, self.active_rows + self.queued_rows, self.max_batch, self.max_queue)
            job.rows_left = job.num_samples
            job.on_drained = self._drained.append
            job.on_cancel = self._cancels.append
            self._pending.append(job)
            self._wakeup.notify()

    # -- the model thread ---------------------------------------------------------------------------

    def run(self) -> None:
        """The model loop, until `stop`; a crash is reported to every waiting job, not raised."""
        try:
            with torch.inference_mode():
                self._run()
        except BaseException as exc:  # a bug: every job it holds is told, none hangs, and no new one is taken
            self.error = exc
            with self._wakeup:
                jobs = {row.job for row in self._active} | set(self._admitting) | set(self._pending)
                self._pending.clear()
            for job in jobs:
                job.push(Failed(f"the model loop failed: {exc!r}"))
                job.notify()

    def _run(self) -> None:
        buffers, ids = None, None
        synced = False  # whether `buffers` hold exactly the active rows, in order, with their current state
        while True:
            admitted = self._admit()
            if admitted is None:
                return
            rows = self._rows_for(admitted)
            cancelled = self._cancelled_rows()
            if (rows or cancelled) and synced:
                self._save_states(buffers)
                synced = False
            for row in cancelled:
                self._finish(row, "cancelled")
            if cancelled:
                self._active = [row for row in self._active if not row.job.cancelled.is_set()]
            self._active += rows
            if not self._active:
                continue
            if not synced:
                buffers, ids = self._regroup()
                synced = True
            logits = self.sampler.step(ids, buffers)
            logits = np.asarray(logits.float().cpu()) if torch.is_tensor(logits) else logits
            synced = not self._advance(logits, ids, buffers)
            for job in {row.job for row in rows}:  # their first characters were made in this tick
                job.first_char = time.perf_counter()
            self.on_tick(len(self._active))

    def _cancelled_rows(self) -> list[Row]:
        """The running rows whose jobs were cancelled; the batch is looked through only after a cancel."""
        if not self._cancels:
            return []
        self._cancels.clear()  # each job was flagged before it was queued, so the look below sees it
        return [row for row in self._active if row.job.cancelled.is_set()]

    def _admit(self) -> list[Job] | None:
        """Jobs whose rows now fit the batch (waiting for work when there is none); None when stopping."""
        self.receive(not self._pending and not self._active)
        with self._wakeup:
            while not self._stopping and not self._pending and not self._active:
                self._wakeup.wait()
            if self._stopping:
                return None
            admitted, rows = [], len(self._active)
            while self._pending and rows + self._pending[0].num_samples <= self.max_batch:
                rows += self._pending[0].num_samples
                admitted.append(self._pending.popleft())
            self._admitting = admitted
            return admitted

    def _rows_for(self, jobs: list[Job]) -> list[Row]:
        """The admitted jobs' rows: each prime from the cache, or read, those of one length together."""
        starts: dict[str, tuple[int, State]] = {}
        unread: dict[int, dict[str, None]] = {}  # by length, each prime once
        taken = []
        for job in jobs:
            if job.cancelled.is_set():
                self._end_job(job, ["cancelled"] * job.num_samples)
                continue
            cached = self.primes.get(job.prime)
            if cached is not None:
                starts[job.prime] = cached
            else:
                try:
                    length = len(self.sampler.vocab.encode(job.prime))
                except CharRNNError as exc:
                    job.push(Failed(str(exc)))
                    job.notify()
                    continue
                unread.setdefault(length, {})[job.prime] = None
            taken.append(job)
        for primes in map(list, unread.values()):
            last, state = self.sampler.warm_many(primes)
            for index, prime in enumerate(primes):
                starts[prime] = (int(last[index]), tuple(part[:, index : index + 1] for part in state))
            if len(primes) == 1:  # read alone, so with the digits a lone request reads it with
                self.primes.put(primes[0], *starts[primes[0]])
        return [row for job in taken for row in self._job_rows(job, *starts[job.prime])]

    def _job_rows(self, job: Job, last_id: int, state: State) -> list[Row]:
        """The job's rows, each from its prime's one-row `state` and last character."""
        job.started = time.perf_counter()
        seed = job.seed if job.seed is not None else int.from_bytes(os.urandom(8), "little") >> 1
        rows = []
        if job.stream:
            self._waiting.add(job)  # its reader waits for the first characters
        for index in range(job.num_samples):
            rng = np.random.default_rng(seed if index == 0 else [seed, index])
            row_state = tuple(part.clone() for part in state)
            rows.append(Row(job, index, row_state, last_id, rng, StopMatcher(job.stop)))
        if job.max_new_chars == 0:
            for row in rows:
                self._finish(row, "length")
            return []
        return rows

    def _regroup(self):
        """Working memory for the active rows, from each row's own state; their options and counters as
        arrays, so that a tick's bookkeeping is a few array operations plus the rows that need more."""
        active = self._active
        state = tuple(torch.cat(parts, dim=1) for parts in zip(*(row.state for row in active), strict=True))
        buffers = self.sampler.step.start(state)
        options = [row.job.options for row in active]
        self._temperature = np.array([o.temperature for o in options])
        self._top_k = np.array([o.top_k for o in options])
        self._top_p = np.array([o.top_p for o in options])
        self._greedy = np.array([o.is_greedy for o in options])
        self._made = np.array([row.made for row in active], dtype=np.int64)
        self._max_new = np.array([row.job.max_new_chars for row in active], dtype=np.int64)
        self._special = [i for i, row in enumerate(active) if row.stops.stops or row.job.logprobs]
        self._special_set = set(self._special)
        jobs: dict[Job, list[int]] = {}
        for index, row in enumerate(active):
            jobs.setdefault(row.job, []).append(index)
        self._job_indices = jobs
        self._draws = self._upcoming_draws(active)
        # the choices of each tick since the batch was formed (grown by doubling), for the rows that need no more
        self._trail, self._ticks = np.empty((64, len(active)), dtype=np.int64), 0
        self._choices = np.array([row.next_id for row in active], dtype=np.int64)
        ids = self._choices.copy()
        if buffers["ops"].xp is not np:
            ids = torch.from_numpy(ids).to(self.sampler.device)
        return buffers, ids

    def _upcoming_draws(self, active: list[Row]) -> np.ndarray:
        """The next `DRAWS` uniforms of each row that samples as a row of one matrix (NaN for greedy rows,
        which draw nothing), from the same per-row streams as `Row.draw`: tick t takes column t."""
        self._column = 0
        draws = np.full((len(active), DRAWS), np.nan)
        for index, row in enumerate(active):
            if not self._greedy[index]:
                draws[index] = row.upcoming()
        return draws

    def _next_draws(self) -> np.ndarray:
        """One uniform for each row that samples (NaN for greedy rows)."""
        if self._column == DRAWS:
            self._use_draws()
            self._draws = self._upcoming_draws(self._active)
        self._column += 1
        return self._draws[:, self._column - 1]

    def _use_draws(self) -> None:
        """Count the columns taken so far as used in each sampling row's own stream."""
        for index, row in enumerate(self._active):
            if not self._greedy[index]:
                row.drawn += self._column
        self._column = 0

    def _save_states(self, buffers) -> None:
        """Copy each active row's state, counters and pending characters out of the running batch (before
        the batch changes)."""
        state = self.sampler.step.state(buffers)
        self._drain_trail()
        for index, row in enumerate(self._active):
            row.state = tuple(s[:, index : index + 1].clone() for s in state)
            row.next_id, row.made = int(self._choices[index]), int(self._made[index])
        if len(self._active) > 1:  # a lone row draws through its own `draw`, not the matrix
            self._use_draws()

    def _drain_trail(self, only: list[int] | None = None) -> None:
        """Move the trail's characters into their rows' pending text (all rows, or the rows `only` names)."""
        if not self._ticks:
            return
        chars, trail, special = self.sampler.vocab.chars, self._trail[: self._ticks], self._special_set
        for index in range(len(self._active)) if only is None else only:
            row = self._active[index]
            if index not in special and row.drained < len(trail):
                row.pending.append("".join([chars[i] for i in trail[row.drained :, index].tolist()]))
                row.drained = len(trail)
        if only is None:
            self._ticks = 0
            for row in self._active:
                row.drained = 0

    def _advance(self, logits: np.ndarray, ids, buffers) -> bool:
        """Pick each row's next character and hand out what its reader is waiting for; returns whether
        any row left the batch. Characters wait in the batch while the reader is busy with earlier ones."""
        chars, active = self.sampler.vocab.chars, self._active
        if len(active) == 1:  # the sampler's own one-row choice (what pick_next_rows gives, in fewer calls)
            choices = np.array([pick_next_row(logits[0], active[0].job.options, active[0])], dtype=np.int64)
        else:
            choices = pick_next_rows(logits, self._temperature, self._top_k, self._top_p, self._next_draws())
        if isinstance(ids, np.ndarray):
            ids[:] = choices
        else:
            ids.copy_(torch.from_numpy(choices))
        self._choices = choices
        if self._ticks == len(self._trail):
            self._trail = np.concatenate([self._trail, np.empty_like(self._trail)])
        self._trail[self._ticks] = choices
        self._ticks += 1
        self._made += 1
        finished = {int(i): "length" for i in np.nonzero(self._made >= self._max_new)[0]}
        for index in self._special:  # rows with stop strings or logprobs, character by character
            row, choice = active[index], int(choices[index])
            job = row.job
            if row.stops.stops:
                text, stopped = row.stops.push(chars[choice])
                row.pending.append(text)
                if stopped:
                    finished[index] = "stop"
            else:
                row.pending.append(chars[choice])
            if job.logprobs:
                row.entries.append(logprob_entry(logits[index], choice, job.logprobs, chars))
        self._hand_out()
        if not finished:
            return False
        self._save_states(buffers)
        for index, reason in finished.items():
            self._finish(active[index], reason)
        self._active = [row for index, row in enumerate(active) if index not in finished]
        return True

    def _hand_out(self) -> None:
        """Give each waiting reader the characters its rows made since it last drained."""
        while self._drained:
            self._waiting.add(self._drained.popleft())
        for job in list(self._waiting):
            indices = self._job_indices.get(job)
            if indices is None:  # ended, or not yet in this batch
                if job.rows_left <= 0:
                    self._waiting.discard(job)
                continue
            self._drain_trail(indices)
            for index in indices:
                self._active[index].flush()
            if job.events:
                self._waiting.discard(job)
                job.notify()

    def _finish(self, row: Row, reason: str) -> None:
        if reason == "length":
            row.pending.append(row.stops.flush())
        row.flush()
        row.job.push(Done(row.index, reason, row.made))
        row.job.rows_left -= 1
        if row.job.rows_left <= 0:
            row.job.push(End())
        row.job.notify(final=row.job.rows_left <= 0)

    def _end_job(self, job: Job, reasons: list[str]) -> None:
        for index, reason in enumerate(reasons):
            job.push(Done(index, reason, 0))
        job.push(End())
        job.notify(final=True)
