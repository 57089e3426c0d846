"""The HTTP process's handle on the model process (`worker.py`): it takes jobs as the scheduler does.

Everything here runs on the event loop's thread, but for `start` and `stop`, which run before the
pipe is attached to the loop and after it is gone; while attached, messages go through `Frames`,
which never blocks the loop. A job's events arrive over the pipe and go into its own deque, so the
app reads them as it read a scheduler's in the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import select
import time
from collections.abc import Callable

from ..errors import CharRNNError
from .frames import Frames, frame
from .job import Job, check_room
from .limits import ServeLimits
from .protocol import Broken, Cancel, Counts, Drained, Events, Failed, Stop, Submit, is_final
from .worker import run_model_process

STOP_TIMEOUT_S = 10.0


class ModelProcess:
    """Starts the model process, submits jobs to it and hands their events back."""

    def __init__(
        self,
        paths: list[str],
        checkpoint: str,
        device: str,
        limits: ServeLimits,
        on_ticks: Callable[[dict[int, int]], None],
    ):
        self.paths, self.checkpoint, self.device = paths, checkpoint, device
        self.limits, self.on_ticks = limits, on_ticks
        self.error: str | None = None
        self._jobs: dict[int, Job] = {}
        self._keys = itertools.count()
        self._counts = Counts()  # as the model process last reported them
        self._submitted = 0  # rows sent to it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._frames: Frames | None = None
        self._stopped = False

    def start(self) -> str | None:
        """Start the process and wait until its model is loaded; why it could not be, or None."""
        context = multiprocessing.get_context("spawn")  # not fork: torch's threads do not survive one
        self._conn, child = context.Pipe()
        self.process = context.Process(
            target=run_model_process,
            args=(child, self.paths, self.checkpoint, self.device, self.limits),
            name="charrnn-model",
            daemon=True,
        )
        self.process.start()
        child.close()
        try:
            message = self._conn.recv()
        except (EOFError, OSError):
            message = Broken(self._exited())
        if isinstance(message, Broken):
            self.process.join(STOP_TIMEOUT_S)
            return message.reason
        return None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the process's messages on `loop` from now on."""
        self._loop = loop
        self._frames = Frames(self._conn.fileno(), loop, self._readable, lambda exc: self._fail(self._exited()))

    @property
    def active_rows(self) -> int:
        return self._counts.active

    @property
    def queued_rows(self) -> int:
        return self._counts.queued + self._submitted - self._counts.seen

    def submit(self, job: Job) -> None:
        """Send `job` to the model process (`check_room` first, on the rows it last reported and those sent since)."""
        if self.error is not None:
            raise CharRNNError(self.error)
        check_room(job, self.active_rows + self.queued_rows, self.limits.max_batch, self.limits.max_queue)
        key = next(self._keys)

        def cancel(job: Job) -> None:
            if key in self._jobs:  # not yet ended
                self._send(Cancel(key))

        job.on_drained = lambda job: self._send(Drained(key))
        job.on_cancel = cancel
        self._jobs[key] = job
        self._submitted += job.num_samples
        self._send(Submit(key, job.spec()))

    def stop(self) -> None:
        """Ask the process to stop and wait for it (ending it if it does not)."""
        if self._stopped or not hasattr(self, "process"):
            return
        self._stopped = True
        unsent = b""
        if self._frames is not None:
            unsent = self._frames.unsent()
            if not self._loop.is_closed():
                self._frames.close()
        with contextlib.suppress(OSError):
            # What the loop had queued first (it may end in half a message), then "stop", unless the
            # process stops reading: it is ended below in any case.
            _write_until(self._conn.fileno(), unsent + frame(Stop()), time.monotonic() + STOP_TIMEOUT_S)
        self.process.join(STOP_TIMEOUT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self._conn.close()

    def _send(self, message: Submit | Cancel | Drained) -> None:
        if self.error is not None:
            return
        try:
            if self._frames is not None:
                self._frames.write(message)
            else:
                self._conn.send(message)
        except OSError:
            self._fail(self._exited())

    def _readable(self) -> None:
        try:
            for message in self._frames.read():
                self._apply(message)
        except (EOFError, OSError):
            self._fail(self._exited())

    def _apply(self, message: Events | Broken) -> None:
        if isinstance(message, Broken):
            self._fail(message.reason)
            return
        out, self._counts, ticks = message
        for key, events, started, first_char in out:
            job = self._jobs.get(key)
            if job is None:
                continue
            job.started, job.first_char = started, first_char
            job.events.extend(events)
            final = any(map(is_final, events))
            if final:
                del self._jobs[key]
            job.notify(final)
        if ticks:
            self.on_ticks(ticks)

    def _fail(self, reason: str) -> None:
        """The model process is gone or its loop failed: every job is told, none waits."""
        if self.error is None:
            self.error = reason
        if self._frames is not None and not self._stopped:
            self._frames.close()
        for job in self._jobs.values():
            job.push(Failed(reason))
            job.notify()
        self._jobs.clear()

    def _exited(self) -> str:
        self.process.join(1.0)
        code = self.process.exitcode
        how = "still running" if code is None else f"signal {-code}" if code < 0 else f"exit code {code}"
        return f"the model process ended ({how})"


def _write_until(fd: int, data: bytes, deadline: float) -> None:
    """Write `data` to `fd` (blocking or not) unless the reader stops taking it before `deadline`."""
    while data and select.select([], [fd], [], max(0.0, deadline - time.monotonic()))[1]:
        try:
            data = data[os.write(fd, data) :]
        except BlockingIOError:
            continue
