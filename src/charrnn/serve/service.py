"""The model as the app serves it: loaded once (in the model process for the scheduler, and here on the CPU
for its vocabulary, its card and scoring), with the server's Prometheus metrics."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..errors import CharRNNError
from ..generate.sampler import Sampler
from ..model.ensemble import load_models
from .job import Job
from .limits import ServeLimits
from .remote import ModelProcess


class ServeMetrics:
    """What `/metrics` reports."""

    def __init__(self, limits: ServeLimits):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "charrnn_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.chars = Counter("charrnn_chars_generated", "characters generated", registry=r)
        self.queue = Gauge("charrnn_queue_rows", "rows waiting for a place in the batch", registry=r)
        self.active = Gauge("charrnn_active_rows", "rows in the running batch", registry=r)
        buckets = sorted({1, 2, 4, 8, 16, 32, 64, 128, 256, limits.max_batch})
        self.occupancy = Histogram("charrnn_batch_rows", "rows advanced per tick", buckets=buckets, registry=r)
        self.latency = Histogram("charrnn_request_seconds", "time from request to its last character", registry=r)
        self.first = Histogram("charrnn_first_char_seconds", "time from request to its first character", registry=r)

    def observe_ticks(self, ticks: dict[int, int]) -> None:
        """The batch's occupancy: how many ticks advanced how many rows."""
        for rows, count in ticks.items():
            for _ in range(count):
                self.occupancy.observe(rows)

    def finished(self, job: Job, generated: int) -> dict:
        """Count an ended job's characters and times; its timings, as responses report them."""
        self.chars.inc(generated)
        now = time.perf_counter()
        started, first = job.started or now, job.first_char or now
        self.latency.observe(now - job.created)
        self.first.observe(first - job.created)
        return {"queued_s": started - job.created, "first_char_s": first - job.created, "total_s": now - job.created}


class Loaded:
    """What the app serves once loading has finished."""

    def __init__(self, sampler: Sampler, infos: list, scheduler: ModelProcess, name: str):
        self.sampler, self.infos, self.scheduler, self.name = sampler, infos, scheduler, name


class Service:
    """The model, as the app serves it: run by the scheduler in a process of its own (`worker.py`),
    and loaded here too, on the CPU, for its vocabulary, its card and scoring.

    Loading starts the model process and waits for its model; `charrnn serve` loads on its main thread
    while uvicorn serves on another (so `/health` answers 503 meanwhile); an app made by `create_app`
    alone (mounted in someone else's server) loads on a thread of its own at startup.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], checkpoint: str, device: str, limits: ServeLimits):
        self.paths, self.checkpoint, self.device, self.limits = [str(p) for p in paths], checkpoint, device, limits
        self.metrics = ServeMetrics(limits)
        self.loaded: Loaded | None = None
        self.error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()  # between loading (any thread) and `attach` (the event loop's)

    def load(self) -> bool:
        """Load the model(s) and start the model process; False, with `error` set, on failure."""
        try:
            model, vocab, infos = load_models(self.paths, self.checkpoint, "cpu")
        except CharRNNError as exc:
            self.error = str(exc)
            return False
        metrics = self.metrics
        process = ModelProcess(self.paths, self.checkpoint, self.device, self.limits, metrics.observe_ticks)
        failure = process.start()
        if failure is not None:
            self.error = failure
            return False
        metrics.queue.set_function(lambda: process.queued_rows)
        metrics.active.set_function(lambda: process.active_rows)
        sampler = Sampler(model, vocab, infos)
        with self._lock:
            self.loaded = Loaded(sampler, infos, process, " + ".join(Path(p).name for p in self.paths))
            loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(process.attach, loop)
        return True

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop the model process's messages are read on (called at the app's startup)."""
        with self._lock:
            self._loop = loop
            loaded = self.loaded
        if loaded is not None:
            loaded.scheduler.attach(loop)

    def load_in_background(self) -> None:
        threading.Thread(target=self.load, name="charrnn-load", daemon=True).start()

    def stop(self) -> None:
        if self.loaded is not None:
            self.loaded.scheduler.stop()
