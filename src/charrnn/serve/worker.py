"""The model process: `charrnn serve` runs the scheduler in a process of its own, beside the HTTP one.

In one process the model loop and the event loop took turns at one GIL: a model whose steps release
it rarely (a small one) held the event loop off for most of each switch interval, so streams sent
late and in bursts, and the event loop's turns stalled the model's. Here the scheduler runs on this
process's main thread (where torch's CPU kernels run their threads well) and talks to the HTTP
process over one pipe: requests, cancellations and "the reader waits for more" come in; each job's
events, the row counts and the batch's occupancy go out, at most one message a tick.
"""

from __future__ import annotations

import collections
import gc
import select
import signal
import time
from multiprocessing.connection import Connection

from ..errors import CharRNNError
from ..generate.sampler import Sampler
from ..model.ensemble import load_models
from .job import Busy, Job
from .limits import ServeLimits
from .protocol import Broken, Cancel, Counts, Drained, Events, Failed, JobEvents, JobSpec, Ready, Stop, Submit, is_final
from .scheduler import Scheduler

SEND_EVERY_S = 0.25  # the batch's occupancy and row counts go out at least this often while it runs


def run_model_process(conn: Connection, paths: list[str], checkpoint: str, device: str, limits: ServeLimits) -> None:
    """The process's entry: load the model, say "ready" (or why not), then run the scheduler until told
    to stop or until the HTTP process goes away."""
    for signum in (signal.SIGINT, signal.SIGTERM):  # the HTTP process drains first, then stops this one
        signal.signal(signum, signal.SIG_IGN)
    try:
        model, vocab, infos = load_models(paths, checkpoint, device)
    except CharRNNError as exc:
        conn.send(Broken(str(exc)))
        return
    sampler = Sampler(model, vocab, infos)
    bridge = _Bridge(conn)
    scheduler = Scheduler(
        sampler, limits.max_batch, limits.max_queue, limits.prime_cache, on_tick=bridge.ticked, receive=bridge.receive
    )
    bridge.scheduler = scheduler
    gc.freeze()  # torch's and the model's objects live as long as the process: full collections skip them
    conn.send(Ready())
    scheduler.run()
    if scheduler.error is not None:
        bridge.woken.update(bridge.jobs)  # every job's "error" event, read or not
        bridge.send_events()
        conn.send(Broken(f"the model loop failed: {scheduler.error!r}"))


class _Bridge:
    """The scheduler's side of the pipe."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.readable = select.poll()  # made once: Connection.poll builds a selector every call, each tick
        self.readable.register(conn.fileno(), select.POLLIN)
        self.scheduler: Scheduler
        self.jobs: dict[int, Job] = {}
        self.woken: dict[int, Job] = {}  # jobs with events to send, in the order they woke
        self.ticks: collections.Counter[int] = collections.Counter()  # rows per tick since the last message
        self.seen = 0  # rows of every job received so far
        self.counts = Counts()  # as last sent
        self.sent_at = time.monotonic()

    def receive(self, idle: bool) -> None:
        """Apply every message waiting on the pipe; when `idle`, wait for work first. EOF: the HTTP
        process is gone, so stop."""
        try:
            while True:
                while self.readable.poll(0):
                    self.apply(self.conn.recv())
                self.send_events()
                if not idle or self.scheduler.has_work:
                    return
                self.readable.poll()
        except (EOFError, OSError):
            self.scheduler.stop()

    def apply(self, message: Submit | Cancel | Drained | Stop) -> None:
        match message:
            case Submit(key, spec):
                self.submit(key, spec)
            case Cancel(key) if key in self.jobs:
                self.jobs[key].cancel()
            case Drained(key) if key in self.jobs:
                job = self.jobs[key]
                job.drained()
                if job.events:  # what the reader would have taken had it read them here
                    job.notify()
            case Stop():
                self.scheduler.stop()

    def submit(self, key: int, spec: JobSpec) -> None:
        job = Job.of(spec)
        job.wake = lambda: self.woken.setdefault(key, job)
        self.jobs[key] = job
        self.seen += job.num_samples
        try:
            self.scheduler.submit(job)
        except (Busy, CharRNNError) as exc:  # the HTTP side checked first; this is its fallback
            job.push(Failed("busy: the batch and the queue are full" if isinstance(exc, Busy) else str(exc)))
            job.notify()

    def ticked(self, rows: int) -> None:
        self.ticks[rows] += 1
        self.send_events(due=time.monotonic() - self.sent_at > SEND_EVERY_S)

    def send_events(self, due: bool = False) -> None:
        """One message, when there is news: each woken job's events with its timings, the row counts
        (when they changed), the ticks' occupancy (when `due`)."""
        scheduler = self.scheduler
        counts = Counts(scheduler.active_rows, scheduler.queued_rows, self.seen)
        if not self.woken and counts == self.counts and not (due and self.ticks):
            return
        out = []
        for key, job in self.woken.items():
            events = [job.events.popleft() for _ in range(len(job.events))]
            if any(map(is_final, events)):
                del self.jobs[key]
            out.append(JobEvents(key, events, job.started, job.first_char))
        self.woken.clear()
        self.conn.send(Events(out, counts, dict(self.ticks)))
        self.counts, self.ticks, self.sent_at = counts, collections.Counter(), time.monotonic()
