"""The FastAPI app: the page, the JSON and streaming APIs, OpenAI's completions shape, health, metrics.

`create_app` loads the model in the background at startup (`/health` answers 503 until it is ready)
and hands every request to the scheduler in the model process (`remote.ModelProcess`). A stream's
generator cancels its job in `finally`, which runs when the client goes away (uvicorn cancels the
response), so an abandoned request stops costing a row within a tick.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict
from importlib import resources
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..errors import CharRNNError
from ..metrics import read_metrics
from ..model import count_parameters
from ..rundir import RunDir
from ..sample import Sampler, SamplingOptions
from .limits import ServeLimits
from .middleware import CountAndCap
from .remote import ModelProcess
from .scheduler import Busy, Job
from .schemas import CompletionRequest, GenerateRequest, cap_errors, stop_errors
from .scoring import openai_logprobs


class _Gathering:
    """How long an open stream collects characters before its next event."""

    def __init__(self, limits: ServeLimits):
        self.limits, self.open = limits, 0  # touched only on the event loop's thread

    def interval(self) -> float:
        return max(self.limits.gather_s, self.open / self.limits.stream_events)


class _Loaded:
    """What the app serves once loading has finished."""

    def __init__(self, sampler: Sampler, infos: list, scheduler: ModelProcess, name: str):
        self.sampler, self.infos, self.scheduler, self.name = sampler, infos, scheduler, name


class _Metrics:
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


class Service:
    """The model, as the app serves it: run by the scheduler in a process of its own (`worker.py`),
    and loaded here too, on the CPU, for its vocabulary, its card and scoring.

    Loading starts the model process and waits for its model; `charrnn serve` loads on its main thread
    while uvicorn serves on another (so `/health` answers 503 meanwhile); an app made by `create_app`
    alone (mounted in someone else's server) loads on a thread of its own at startup.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], checkpoint: str, device: str, limits: ServeLimits):
        self.paths, self.checkpoint, self.device, self.limits = [str(p) for p in paths], checkpoint, device, limits
        self.metrics = _Metrics(limits)
        self.loaded: _Loaded | None = None
        self.error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()  # between loading (any thread) and `attach` (the event loop's)

    def load(self) -> bool:
        """Load the model(s) and start the model process; False, with `error` set, on failure."""
        from .. import load as load_sampler

        paths = self.paths
        try:
            sampler = load_sampler(paths, self.checkpoint, "cpu")
        except CharRNNError as exc:
            self.error = str(exc)
            return False
        limits, metrics = self.limits, self.metrics
        process = ModelProcess(
            paths,
            self.checkpoint,
            self.device,
            limits.max_batch,
            limits.max_queue,
            limits.prime_cache,
            metrics.observe_ticks,
        )
        failure = process.start()
        if failure is not None:
            self.error = failure
            return False
        metrics.queue.set_function(lambda: process.queued_rows)
        metrics.active.set_function(lambda: process.active_rows)
        infos = sampler.info if isinstance(sampler.info, list) else [sampler.info]
        with self._lock:
            self.loaded = _Loaded(sampler, infos, process, " + ".join(Path(p).name for p in paths))
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


def create_app(
    paths: Sequence[str | os.PathLike] = (),
    checkpoint: str = "best",
    device: str = "cpu",
    limits: ServeLimits | None = None,
    api_keys: Sequence[str] = (),
    cors_origins: Sequence[str] = (),
    service: Service | None = None,
) -> FastAPI:
    """The app serving the run(s) at `paths` (more than one: their ensemble). Given a `service`, the
    caller loads it; otherwise the app loads it at startup, on a thread of its own."""
    own_service = service is None
    service = service or Service(paths, checkpoint, device, limits or ServeLimits())
    limits, metrics = service.limits, service.metrics

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.attach(asyncio.get_running_loop())
        if own_service:
            service.load_in_background()
        yield
        service.stop()

    app = FastAPI(title="charrnn", description="Character-level RNN text generation.", lifespan=lifespan)
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["*"], allow_headers=["*"])
    keys = frozenset(api_keys)
    gathering = _Gathering(limits)

    app.add_middleware(
        CountAndCap,
        max_body=limits.max_body,
        count=lambda route, status: metrics.requests.labels(route, str(status)).inc(),
    )

    # async: a plain def would send every request through the thread pool
    async def authorized(request: Request) -> None:
        if keys and request.headers.get("authorization", "").removeprefix("Bearer ").strip() not in keys:
            raise HTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})

    def ready() -> _Loaded:
        if service.loaded is None:
            raise HTTPException(503, service.error or "the model is loading")
        return service.loaded

    guarded = [Depends(authorized)]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return resources.files("charrnn.serve").joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/health")
    def health() -> JSONResponse:
        if service.loaded is not None and service.loaded.scheduler.error is not None:
            return JSONResponse({"status": "error", "error": service.loaded.scheduler.error}, status_code=503)
        if service.loaded is not None:
            return JSONResponse({"status": "ok"})
        if service.error:
            return JSONResponse({"status": "error", "error": service.error}, status_code=503)
        return JSONResponse({"status": "loading"}, status_code=503)

    @app.get("/info", dependencies=guarded)
    def info() -> dict:
        loaded = ready()
        members = [
            {
                "checkpoint": i.name,
                "step": i.step,
                "val_loss": i.val_loss,
                "best_val_loss": i.meta.get("best_val_loss"),
                "model": i.meta["model"],
            }
            for i in loaded.infos
        ]
        return {
            "name": loaded.name,
            "parameters": count_parameters(loaded.sampler.model),
            "vocab": "".join(loaded.sampler.vocab.chars),
            "members": members,
            "limits": asdict(limits),
        }

    @app.get("/curves", dependencies=guarded)
    def curves() -> dict:
        """Each member's training and validation loss by step, for the page's plot (at most 500 points)."""
        loaded = ready()
        out = []
        for i in loaded.infos:
            path = RunDir.of(i.meta_path).metrics_file
            rows = read_metrics(path) if path.is_file() else []
            stride = max(1, len(rows) // 500)
            train = [[int(r["step"]), float(r["train_loss"])] for r in rows[::stride]]
            val = [[int(r["step"]), float(r["val_loss"])] for r in rows if r["val_loss"]]
            out.append({"checkpoint": i.name, "train": train, "val": val})
        return {"runs": out}

    @app.get("/v1/models", dependencies=guarded)
    def models() -> dict:
        loaded = ready()
        return {"object": "list", "data": [{"id": loaded.name, "object": "model", "owned_by": "charrnn"}]}

    @app.get("/metrics", include_in_schema=False, dependencies=guarded)
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def submit(loaded: _Loaded, job: Job) -> asyncio.Event:
        """Queue the job; its events wake the returned asyncio.Event."""
        loop, woken = asyncio.get_running_loop(), asyncio.Event()
        job.wake = lambda: loop.call_soon_threadsafe(woken.set)
        if loaded.scheduler.error is not None:
            raise HTTPException(503, loaded.scheduler.error)
        try:
            loaded.scheduler.submit(job)
        except Busy:
            retry = str(max(1, round(limits.max_length / 1000)))
            raise HTTPException(429, "busy: the batch and the queue are full", headers={"Retry-After": retry}) from None
        except CharRNNError as exc:
            raise HTTPException(422, str(exc)) from None
        return woken

    def make_job(
        loaded: _Loaded, body: GenerateRequest, names: dict[str, str] | None = None, stream: bool = False
    ) -> Job:
        """The job for a checked request; 422 naming the fields as the client sent them (`names` maps
        /generate's field names to another route's)."""
        errors = cap_errors(
            {
                "max_new_chars": (body.max_new_chars, limits.max_length),
                "num_samples": (body.num_samples, limits.max_batch),
                "prime": (len(body.prime), limits.max_prime),
            }
        )
        errors += stop_errors(body.stop)
        try:
            loaded.sampler.vocab.encode(body.prime)
        except CharRNNError as exc:  # names the characters the model never saw
            errors.append({"loc": ["body", "prime"], "msg": str(exc), "type": "value_error"})
        if errors:
            for error in errors:
                error["loc"] = [(names or {}).get(part, part) for part in error["loc"]]
            raise HTTPException(422, errors)
        try:
            options = SamplingOptions(body.temperature, body.top_k, body.top_p, body.greedy)
        except CharRNNError as exc:
            raise HTTPException(422, str(exc)) from None
        return Job(
            body.prime,
            body.max_new_chars,
            options,
            body.seed,
            body.num_samples,
            tuple(body.stop),
            body.logprobs,
            stream=stream,
        )

    async def batches(
        job: Job, woken: asyncio.Event, request: Request | None, gather: bool
    ) -> AsyncIterator[list[tuple] | None]:
        """The job's events, in batches of what arrived together; None when idle for a ping's time.
        With `gather` (streams), each batch after the first goes `gathering.interval()` after the one
        before, with what arrived meanwhile, or as soon as the job ends. Cancels the job if left early."""
        loop, sent_at = asyncio.get_running_loop(), None
        gathering.open += gather
        try:
            while True:
                try:
                    await asyncio.wait_for(woken.wait(), timeout=limits.ping_s)
                except TimeoutError:
                    if request is not None and await request.is_disconnected():
                        return
                    yield None
                    continue
                # The first characters go at once, and the last; between them, fewer and larger events.
                ended = bool(job.events) and job.events[-1][0] in ("end", "error")
                if gather and sent_at is not None and not ended:
                    await until_final(woken, sent_at + gathering.interval() - loop.time())
                sent_at = loop.time()
                woken.clear()
                job.drained()  # from here on, new events wake us again
                batch = []
                while job.events:
                    batch.append(job.events.popleft())
                    if batch[-1][0] in ("end", "error"):
                        break
                yield _joined(batch)
                if batch and batch[-1][0] in ("end", "error"):
                    return
        finally:
            gathering.open -= gather
            job.cancel()  # a no-op once the job has ended; frees its rows if the client left

    async def until_final(woken: asyncio.Event, seconds: float) -> None:
        """Wait `seconds`, or less if the job's last events arrive (the only wake while a reader gathers:
        the others are held until it has drained)."""
        woken.clear()
        with suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), timeout=max(seconds, 0.0))

    async def events(
        job: Job, woken: asyncio.Event, request: Request | None = None, gather: bool = False
    ) -> AsyncIterator[tuple | None]:
        """The job's events one by one (a row's characters that arrived together as one text event)."""
        async for batch in batches(job, woken, request, gather=gather):
            if batch is None:
                yield None
                continue
            for event in batch:
                yield event

    def timings(job: Job) -> dict:
        now = time.perf_counter()
        started = job.started or now
        first = job.first_char or now
        metrics.latency.observe(now - job.created)
        metrics.first.observe(first - job.created)
        return {
            "queued_s": started - job.created,
            "first_char_s": first - job.created,
            "total_s": now - job.created,
        }

    async def collect(job: Job, woken: asyncio.Event, request: Request) -> dict:
        texts, reasons, logprobs = (
            [""] * job.num_samples,
            [None] * job.num_samples,
            [[] for _ in range(job.num_samples)],
        )
        made = [0] * job.num_samples
        async for event in events(job, woken, request):
            if event is None:
                continue
            if event[0] == "error":
                raise HTTPException(500, event[1])
            if event[0] == "text":
                _, index, text, entries = event
                texts[index] += text
                logprobs[index] += entries
            elif event[0] == "done":
                _, index, reason, count = event
                reasons[index], made[index] = reason, count
        metrics.chars.inc(sum(made))
        return {"texts": texts, "finish_reasons": reasons, "logprobs": logprobs, "made": made}

    @app.post("/generate", dependencies=guarded)
    async def generate(body: GenerateRequest, request: Request) -> dict:
        loaded = ready()
        job = make_job(loaded, body)
        result = await collect(job, submit(loaded, job), request)
        out = {
            "texts": result["texts"],
            "finish_reasons": result["finish_reasons"],
            "usage": {"prime_chars": len(body.prime), "generated_chars": sum(result["made"])},
            "timings": timings(job),
        }
        if body.logprobs:
            out["logprobs"] = result["logprobs"]
        return out

    def sse(data: dict, event: str | None = None) -> str:
        head = f"event: {event}\n" if event else ""
        return f"{head}data: {json.dumps(data)}\n\n"

    @app.post("/generate/stream", dependencies=guarded)
    async def generate_stream(body: GenerateRequest) -> StreamingResponse:
        loaded = ready()
        job = make_job(loaded, body, stream=True)
        woken = submit(loaded, job)

        async def stream() -> AsyncIterator[str]:
            reasons, made = [None] * job.num_samples, [0] * job.num_samples
            async for event in events(job, woken, gather=True):
                if event is None:
                    yield ": ping\n\n"
                elif event[0] == "text":
                    _, index, text, entries = event
                    yield sse({"index": index, "text": text, **({"logprobs": entries} if entries else {})})
                elif event[0] == "done":
                    reasons[event[1]], made[event[1]] = event[2], event[3]
                elif event[0] == "error":
                    yield sse({"error": event[1]}, "error")
                elif event[0] == "end":
                    metrics.chars.inc(sum(made))
                    usage = {"prime_chars": len(body.prime), "generated_chars": sum(made)}
                    yield sse({"finish_reasons": reasons, "usage": usage, "timings": timings(job)}, "done")

        return StreamingResponse(stream(), media_type="text/event-stream", headers=_STREAM_HEADERS)

    @app.post("/v1/completions", dependencies=guarded)
    async def completions(body: CompletionRequest, request: Request):
        loaded = ready()
        try:
            prompt = body.prompt_text()
        except ValueError as exc:
            raise HTTPException(422, [{"loc": ["body", "prompt"], "msg": str(exc), "type": "value_error"}]) from None
        # Validated as a completion request already; make_job checks the server's caps and the stops.
        generate_body = GenerateRequest.model_construct(
            prime=prompt, max_new_chars=body.max_tokens, temperature=body.temperature, top_p=body.top_p,
            top_k=body.top_k, greedy=False, seed=body.seed, num_samples=body.n, stop=body.stops(),
            logprobs=body.logprobs or 0,
        )  # fmt: skip
        job = make_job(loaded, generate_body, _COMPLETION_NAMES, stream=bool(body.stream))
        echoed = None
        if body.echo:
            echoed = await asyncio.to_thread(openai_logprobs, loaded.sampler, prompt, body.logprobs or 0)
        woken = submit(loaded, job)
        meta = {"id": f"cmpl-{os.urandom(8).hex()}", "created": int(time.time()), "model": loaded.name}
        if body.stream:
            return StreamingResponse(
                _completion_chunks(job, woken, events, meta, prompt if body.echo else None, echoed, body.logprobs),
                media_type="text/event-stream",
                headers=_STREAM_HEADERS,
            )
        result = await collect(job, woken, request)
        choices = []
        for index in range(job.num_samples):
            text = result["texts"][index]
            logprobs = None
            if body.logprobs is not None:
                logprobs = _openai_logprobs(result["logprobs"][index], echoed, len(prompt) if body.echo else 0)
            choices.append({
                "text": (prompt if body.echo else "") + text,
                "index": index,
                "logprobs": logprobs,
                "finish_reason": result["finish_reasons"][index],
            })  # fmt: skip
        completion_chars = sum(result["made"])
        usage = {"prompt_tokens": len(prompt), "completion_tokens": completion_chars}
        usage["total_tokens"] = usage["prompt_tokens"] + completion_chars
        timings(job)
        return {**meta, "object": "text_completion", "choices": choices, "usage": usage}

    return app


_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_COMPLETION_NAMES = {"prime": "prompt", "max_new_chars": "max_tokens", "num_samples": "n"}


def _joined(batch: list[tuple]) -> list[tuple]:
    """One text event per row for each run of its text events (their characters and logprob lists joined),
    so that a stream sends one event per chunk of characters, not one per character."""
    joined: list[tuple] = []
    open_row: dict[int, int] = {}  # row -> index in `joined` of its text event being extended
    for event in batch:
        if event[0] != "text":
            if event[0] == "done":
                open_row.pop(event[1], None)
            joined.append(event)
            continue
        _, row, text, entries = event
        at = open_row.get(row)
        if at is None:
            open_row[row] = len(joined)
            joined.append(("text", row, text, list(entries)))
        else:
            _, _, old_text, old_entries = joined[at]
            joined[at] = ("text", row, old_text + text, old_entries + entries)
    return joined


def _openai_logprobs(entries: list[dict], echoed: dict | None, offset_start: int) -> dict:
    """OpenAI's legacy logprobs object from per-character entries (after the echoed prompt's, if any)."""
    tokens, token_logprobs, top, offsets = [], [], [], []
    if echoed is not None:
        tokens, token_logprobs, top = (
            list(echoed["tokens"]),
            list(echoed["token_logprobs"]),
            list(echoed["top_logprobs"]),
        )
        offsets = list(range(len(tokens)))
    for k, entry in enumerate(entries):
        tokens.append(entry["char"])
        token_logprobs.append(entry["logprob"])
        top.append(dict(entry["top"]))
        offsets.append(offset_start + k)
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top, "text_offset": offsets}


async def _completion_chunks(job, woken, events, meta, echo_prompt, echoed, logprobs) -> AsyncIterator[str]:
    """OpenAI's streamed completion chunks, then `data: [DONE]`."""

    def chunk(index: int, text: str, reason, entries) -> str:
        lp = _openai_logprobs(entries, None, 0) if logprobs is not None and entries is not None else None
        choice = {"text": text, "index": index, "logprobs": lp, "finish_reason": reason}
        return f"data: {json.dumps({**meta, 'object': 'text_completion', 'choices': [choice]})}\n\n"

    if echo_prompt:
        for index in range(job.num_samples):
            yield chunk(index, echo_prompt, None, None)
    async for event in events(job, woken, gather=True):
        if event is None:
            yield ": ping\n\n"
        elif event[0] == "text":
            _, index, text, entries = event
            yield chunk(index, text, None, entries)
        elif event[0] == "done":
            yield chunk(event[1], "", event[2], [])
        elif event[0] == "error":
            yield f"data: {json.dumps({'error': {'message': event[1], 'type': 'server_error'}})}\n\n"
        elif event[0] == "end":
            yield "data: [DONE]\n\n"
