"""Reading a job's events on the event loop: woken by the model process, in batches of what arrived
together, a ping when idle, and for streams, paced so that many open streams send fewer, larger events.

A reader cancels its job when it is left early (`finally`), which happens when the client goes away
(uvicorn cancels the response), so an abandoned request stops costing a row within a tick.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress

from fastapi import Request

from .job import Job
from .limits import ServeLimits
from .protocol import Done, Event, Text, is_final


class Gathering:
    """How long an open stream collects characters before its next event."""

    def __init__(self, limits: ServeLimits):
        self.limits, self.open = limits, 0  # touched only on the event loop's thread

    def interval(self) -> float:
        return max(self.limits.gather_s, self.open / self.limits.stream_events)


class JobReader:
    """Reads jobs' events for the app's routes; one per app, so it counts the app's open streams."""

    def __init__(self, limits: ServeLimits):
        self.limits, self.gathering = limits, Gathering(limits)

    async def events(
        self, job: Job, woken: asyncio.Event, request: Request | None = None, gather: bool = False
    ) -> AsyncIterator[Event | None]:
        """The job's events one by one (a row's characters that arrived together as one text event);
        None when idle for a ping's time."""
        async for batch in self.batches(job, woken, request, gather=gather):
            if batch is None:
                yield None
                continue
            for event in batch:
                yield event

    async def batches(
        self, job: Job, woken: asyncio.Event, request: Request | None, gather: bool
    ) -> AsyncIterator[list[Event] | None]:
        """The job's events, in batches of what arrived together; None when idle for a ping's time.
        With `gather` (streams), each batch after the first goes `gathering.interval()` after the one
        before, with what arrived meanwhile, or as soon as the job ends. Cancels the job if left early."""
        loop, sent_at = asyncio.get_running_loop(), None
        self.gathering.open += gather
        try:
            while True:
                try:
                    await asyncio.wait_for(woken.wait(), timeout=self.limits.ping_s)
                except TimeoutError:
                    if request is not None and await request.is_disconnected():
                        return
                    yield None
                    continue
                # The first characters go at once, and the last; between them, fewer and larger events.
                ended = bool(job.events) and is_final(job.events[-1])
                if gather and sent_at is not None and not ended:
                    await _until_final(woken, sent_at + self.gathering.interval() - loop.time())
                sent_at = loop.time()
                woken.clear()
                job.drained()  # from here on, new events wake us again
                batch = []
                while job.events:
                    batch.append(job.events.popleft())
                    if is_final(batch[-1]):
                        break
                yield joined(batch)
                if batch and is_final(batch[-1]):
                    return
        finally:
            self.gathering.open -= gather
            job.cancel()  # a no-op once the job has ended; frees its rows if the client left


async def _until_final(woken: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if the job's last events arrive (the only wake while a reader gathers:
    the others are held until it has drained)."""
    woken.clear()
    with suppress(TimeoutError):
        await asyncio.wait_for(woken.wait(), timeout=max(seconds, 0.0))


def joined(batch: list[Event]) -> list[Event]:
    """One text event per row for each run of its text events (their characters and logprob lists joined),
    so that a stream sends one event per chunk of characters, not one per character."""
    out: list[Event] = []
    open_row: dict[int, int] = {}  # row -> index in `out` of its text event being extended
    for event in batch:
        if not isinstance(event, Text):
            if isinstance(event, Done):
                open_row.pop(event.row, None)
            out.append(event)
            continue
        at = open_row.get(event.row)
        if at is None:
            open_row[event.row] = len(out)
            out.append(Text(event.row, event.text, list(event.entries)))
        else:
            old = out[at]
            out[at] = Text(event.row, old.text + event.text, old.entries + event.entries)
    return out
