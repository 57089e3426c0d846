"""A job: one request as the scheduler runs it (its `JobSpec`, its events and its timings), and the rule
for whether its rows fit."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import CharRNNError
from .protocol import Event, JobSpec


class Busy(Exception):
    """The batch and the queue are full: the caller should answer 429."""


def check_room(job: Job, rows_taken: int, max_batch: int, max_queue: int) -> None:
    """Raise unless `job`'s rows fit beside `rows_taken` (running or waiting): `CharRNNError` when they
    never could, `Busy` when they cannot now."""
    if job.num_samples > max_batch:
        raise CharRNNError(f"num_samples {job.num_samples} is more than the server's --max-batch {max_batch}")
    if rows_taken + job.num_samples > max_batch + max_queue:
        raise Busy


@dataclass(eq=False)
class Job(JobSpec):
    """One request as it runs: its spec, and where its characters go."""

    __eq__, __hash__ = object.__eq__, object.__hash__  # a job is itself, not its fields: jobs go in sets
    wake: Callable[[], None] = lambda: None  # called (from the model thread) when events are waiting
    on_drained: Callable[[Job], None] = lambda job: None  # set by the scheduler: the reader waits for more
    on_cancel: Callable[[Job], None] = lambda job: None  # set by a scheduler in another process
    events: collections.deque = field(default_factory=collections.deque)
    cancelled: threading.Event = field(default_factory=threading.Event)
    created: float = field(default_factory=time.perf_counter)
    started: float | None = None  # when its prime had been read (admission)
    first_char: float | None = None
    rows_left: int = 0

    woken: bool = False  # a wake is pending: the reader has not drained since (wakes are coalesced)

    @classmethod
    def of(cls, spec: JobSpec) -> Job:
        """The job that runs `spec` (one made in another process)."""
        return cls(**vars(spec))

    def push(self, event: Event) -> None:
        self.events.append(event)

    def notify(self, final: bool = False) -> None:
        """Wake the reader unless a wake is already on its way; `final` (the job's last events) wakes it
        regardless, so that a reader gathering characters for its next event sends at once."""
        if final or not self.woken:
            self.woken = True
            self.wake()

    def drained(self) -> None:
        """The reader took every event so far and waits for the next (called from the reader's thread)."""
        self.woken = False
        self.on_drained(self)

    def cancel(self) -> None:
        if not self.cancelled.is_set():
            self.cancelled.set()
            self.on_cancel(self)
