"""The serving protocol's messages: what a request asks for, the events a job hands its reader, and what
crosses the pipe between the HTTP process and the model process (`remote.py`, `worker.py`).

Events and pipe messages are NamedTuples: typed and matched by name, yet pickled as compactly as the
bare tuples they replace (a tick sends every streaming row's text in one message). The one owner of
each message's fields is its class here; the wire formats (JSON, SSE, OpenAI's) are the codecs'.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple

from ..generate.picking import SamplingOptions


@dataclass
class JobSpec:
    """What a request asks the scheduler for: everything about a job that crosses the pipe."""

    prime: str
    max_new_chars: int
    options: SamplingOptions
    seed: int | None = None
    num_samples: int = 1
    stop: tuple[str, ...] = ()
    logprobs: int = 0  # the top N characters with their log-probabilities at each step; 0: none
    stream: bool = True  # False: the reader wants the text only when it is done, so it is not woken per tick

    def spec(self) -> JobSpec:
        """This request's fields alone (a `Job` is a `JobSpec` with its running state added)."""
        return JobSpec(**{f.name: getattr(self, f.name) for f in fields(JobSpec)})


# -- a job's events, in the order its reader receives them ----------------------------------------------


class Text(NamedTuple):
    """Characters a row made since its last text event, with their logprob entries when asked for."""

    row: int
    text: str
    entries: list


class Done(NamedTuple):
    """A row ended: "length", "stop" or "cancelled", after `made` characters."""

    row: int
    reason: str
    made: int


class Failed(NamedTuple):
    """The job could not run or the model loop failed; the job's last event."""

    message: str


class End(NamedTuple):
    """Every row of the job has ended; its last event."""


Event = Text | Done | Failed | End


def is_final(event: Event) -> bool:
    """Whether `event` is its job's last."""
    return isinstance(event, End | Failed)


# -- the pipe: HTTP process -> model process ------------------------------------------------------------


class Submit(NamedTuple):
    key: int
    spec: JobSpec


class Cancel(NamedTuple):
    key: int


class Drained(NamedTuple):
    """The job's reader took every event so far and waits for more."""

    key: int


class Stop(NamedTuple):
    pass


# -- the pipe: model process -> HTTP process ------------------------------------------------------------


class Ready(NamedTuple):
    """The model is loaded and the scheduler about to run."""


class Broken(NamedTuple):
    """The model could not be loaded, or its loop failed: why."""

    reason: str


class JobEvents(NamedTuple):
    key: int
    events: list[Event]
    started: float | None
    first_char: float | None


class Counts(NamedTuple):
    """The model process's rows: running, waiting, and received in all (to count what is in flight)."""

    active: int = 0
    queued: int = 0
    seen: int = 0


class Events(NamedTuple):
    """One message a tick at most: woken jobs' events, the row counts, the batch's occupancy (rows per
    tick: how many ticks) since the last message."""

    jobs: list[JobEvents]
    counts: Counts
    ticks: dict[int, int]
