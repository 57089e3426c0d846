"""The FastAPI app: routes, auth and readiness; the page, the JSON and streaming APIs, OpenAI's
completions shape, health, metrics.

Each route decodes its body into a job with its codec (`codec_generate.py`, `codec_openai.py`), hands
it to the scheduler in the model process (`service.Service`, `remote.ModelProcess`), and encodes the
job's events as `reader.JobReader` reads them. `create_app` loads the model in the background at
startup unless given a loaded `Service` (`/health` answers 503 until it is ready).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from importlib import resources

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..errors import CharRNNError
from ..model.network import count_parameters
from ..runs.metrics import read_metrics
from ..runs.rundir import RunDir
from .codec_generate import GenerateJson, GenerateSse, JobFailed
from .codec_openai import Completions
from .job import Busy, Job
from .limits import ServeLimits
from .middleware import CountAndCap
from .protocol import JobSpec
from .reader import JobReader
from .schemas import CompletionRequest, GenerateRequest, Rejected
from .scoring import openai_logprobs
from .service import Loaded, Service

_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


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
    metrics = service.metrics

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
    app.add_middleware(
        CountAndCap,
        max_body=service.limits.max_body,
        count=lambda route, status: metrics.requests.labels(route, str(status)).inc(),
    )
    guarded = [Depends(_authorization(frozenset(api_keys)))]
    _add_card_routes(app, service, guarded)
    _add_generation_routes(app, service, guarded)
    return app


def _authorization(keys: frozenset[str]):
    """The dependency that refuses a request without one of `keys` (none: every request passes)."""

    # async: a plain def would send every request through the thread pool
    async def authorized(request: Request) -> None:
        if keys and request.headers.get("authorization", "").removeprefix("Bearer ").strip() not in keys:
            raise HTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})

    return authorized


def _ready(service: Service) -> Loaded:
    """What is loaded, or 503 while loading (or why loading failed)."""
    if service.loaded is None:
        raise HTTPException(503, service.error or "the model is loading")
    return service.loaded


def _add_card_routes(app: FastAPI, service: Service, guarded: list) -> None:
    """The page, health, the model's card and curves, the model list and the metrics."""

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return resources.files("charrnn.serve").joinpath("page.html").read_text(encoding="utf-8")

    def shared_asset(name: str, media_type: str) -> Response:  # what the exported page shares (charrnn/web)
        return Response(
            resources.files("charrnn.web").joinpath(name).read_text(encoding="utf-8"), media_type=media_type
        )

    @app.get("/page.css", include_in_schema=False)
    def page_style() -> Response:
        return shared_asset("page.css", "text/css")

    @app.get("/controls.js", include_in_schema=False)
    def page_controls() -> Response:
        return shared_asset("controls.js", "text/javascript")

    @app.get("/health")
    def health() -> JSONResponse:
        loaded = service.loaded
        if loaded is not None and loaded.scheduler.error is not None:
            return JSONResponse({"status": "error", "error": loaded.scheduler.error}, status_code=503)
        if loaded is not None:
            return JSONResponse({"status": "ok"})
        if service.error:
            return JSONResponse({"status": "error", "error": service.error}, status_code=503)
        return JSONResponse({"status": "loading"}, status_code=503)

    @app.get("/info", dependencies=guarded)
    def info() -> dict:
        loaded = _ready(service)
        return {
            "name": loaded.name,
            "parameters": count_parameters(loaded.sampler.model),
            "vocab": "".join(loaded.sampler.vocab.chars),
            "symbol": loaded.sampler.vocab.symbol,  # "byte": texts are its bytes decoded as UTF-8, U+FFFD where invalid
            "members": [_member(i) for i in loaded.infos],
            "limits": asdict(service.limits),
        }

    @app.get("/curves", dependencies=guarded)
    def curves() -> dict:
        """Each member's training and validation loss by step, for the page's plot (at most 500 points)."""
        return {"runs": [_curves(i) for i in _ready(service).infos]}

    @app.get("/v1/models", dependencies=guarded)
    def models() -> dict:
        loaded = _ready(service)
        return {"object": "list", "data": [{"id": loaded.name, "object": "model", "owned_by": "charrnn"}]}

    @app.get("/metrics", include_in_schema=False, dependencies=guarded)
    def prometheus() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _member(info) -> dict:
    meta = info.meta
    return {
        "checkpoint": info.name,
        "step": info.step,
        "val_loss": info.val_loss,
        "best_val_loss": meta.get("best_val_loss"),
        "model": meta["model"],
    }


def _curves(info) -> dict:
    path = RunDir.of(info.meta_path).metrics_file
    rows = read_metrics(path) if path.is_file() else []
    stride = max(1, len(rows) // 500)
    train = [[int(r["step"]), float(r["train_loss"])] for r in rows[::stride]]
    val = [[int(r["step"]), float(r["val_loss"])] for r in rows if r["val_loss"]]
    return {"checkpoint": info.name, "train": train, "val": val}


def _add_generation_routes(app: FastAPI, service: Service, guarded: list) -> None:
    """/generate, /generate/stream and /v1/completions: decode, submit, read, encode."""
    limits, reader = service.limits, JobReader(service.limits)

    def submitted(spec: JobSpec) -> tuple[Job, asyncio.Event]:
        """The job for `spec`, queued; its events wake the returned asyncio.Event."""
        loaded = _ready(service)
        job, loop, woken = Job.of(spec), asyncio.get_running_loop(), asyncio.Event()
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
        return job, woken

    async def collected(job: Job, woken: asyncio.Event, request: Request) -> list:
        return [event async for event in reader.events(job, woken, request) if event is not None]

    def finish(job: Job):
        return lambda generated: service.metrics.finished(job, generated)

    @app.post("/generate", dependencies=guarded)
    async def generate(body: GenerateRequest, request: Request) -> dict:
        codec = GenerateJson(limits, _ready(service).sampler.vocab)
        spec = _decoded(codec.decode, body)
        job, woken = submitted(spec)
        return _encoded(codec.encode, spec, await collected(job, woken, request), finish(job))

    @app.post("/generate/stream", dependencies=guarded)
    async def generate_stream(body: GenerateRequest) -> StreamingResponse:
        codec = GenerateSse(limits, _ready(service).sampler.vocab)
        spec = _decoded(codec.decode, body)
        job, woken = submitted(spec)
        chunks = codec.encode_stream(spec, reader.events(job, woken, gather=True), finish(job))
        return StreamingResponse(chunks, media_type="text/event-stream", headers=_STREAM_HEADERS)

    @app.post("/v1/completions", dependencies=guarded)
    async def completions(body: CompletionRequest, request: Request):
        loaded = _ready(service)
        spec = _decoded(Completions.decode, body, limits, loaded.sampler.vocab)
        echoed = None
        if body.echo:
            echoed = await asyncio.to_thread(openai_logprobs, loaded.sampler, spec.prime, spec.logprobs)
        meta = {"id": f"cmpl-{os.urandom(8).hex()}", "created": int(time.time()), "model": loaded.name}
        codec = Completions(body, loaded.sampler.vocab, meta, echoed)
        job, woken = submitted(spec)
        if spec.stream:
            chunks = codec.encode_stream(spec, reader.events(job, woken, gather=True), finish(job))
            return StreamingResponse(chunks, media_type="text/event-stream", headers=_STREAM_HEADERS)
        return _encoded(codec.encode, spec, await collected(job, woken, request), finish(job))


def _decoded(decode, *args) -> JobSpec:
    """`decode(*args)`, its refusal a 422."""
    try:
        return decode(*args)
    except Rejected as exc:
        raise HTTPException(422, exc.detail) from None


def _encoded(encode, spec: JobSpec, events: list, finish) -> dict:
    """`encode(spec, events, finish)`, a failed job a 500."""
    try:
        return encode(spec, events, finish)
    except JobFailed as exc:
        raise HTTPException(500, str(exc)) from None
