"""charrnn's own wire formats: POST /generate (a JSON body in, one JSON body out) and POST
/generate/stream (the same body in, server-sent events out). Each codec decodes a request into a
`JobSpec` and encodes the job's events; neither needs HTTP to be tested."""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable

from ..data.vocab import Vocab
from .limits import ServeLimits
from .protocol import Done, End, Event, Failed, JobSpec, Text
from .schemas import GenerateRequest, check_spec, sampling_options

Finish = Callable[[int], dict]  # called once a job has ended with its characters made: its timings


class JobFailed(Exception):
    """The job's `Failed` event, met while collecting a response that is not streamed (a 500)."""


class Readable:
    """Rows' symbols as text for JSON: a character model's as they are; a byte model's decoded as UTF-8
    row by row as they arrive (a sequence cut between two events is completed by the next), invalid
    sequences replaced with U+FFFD."""

    def __init__(self, vocab: Vocab, rows: int):
        decoder = codecs.getincrementaldecoder("utf-8")
        self.decoders = [decoder("replace") for _ in range(rows)] if vocab.byte_level else None

    def text(self, row: int, symbols: str, final: bool = False) -> str:
        if self.decoders is None:
            return symbols
        return self.decoders[row].decode(symbols.encode("latin-1"), final=final)


class Collected:
    """A job's rows as its events build them: texts, finish reasons, logprob entries, symbols made."""

    def __init__(self, rows: int, vocab: Vocab):
        self.texts, self.reasons = [""] * rows, [None] * rows
        self.logprobs: list[list] = [[] for _ in range(rows)]
        self.made = [0] * rows
        self.readable = Readable(vocab, rows)

    @classmethod
    def of(cls, rows: int, vocab: Vocab, events: Iterable[Event]) -> Collected:
        collected = cls(rows, vocab)
        for event in events:
            collected.add(event)
        return collected

    def add(self, event: Event) -> None:
        match event:
            case Text(row, text, entries):
                self.texts[row] += self.readable.text(row, text)
                self.logprobs[row] += entries
            case Done(row, reason, made):
                self.texts[row] += self.readable.text(row, "", final=True)
                self.reasons[row], self.made[row] = reason, made
            case Failed(message):
                raise JobFailed(message)


class GenerateJson:
    """POST /generate."""

    stream = False

    def __init__(self, limits: ServeLimits, vocab: Vocab):
        self.limits, self.vocab = limits, vocab

    def decode(self, body: GenerateRequest) -> JobSpec:
        """The job `body` asks for, or `Rejected` naming the fields the server will not take."""
        options = sampling_options(body.temperature, body.top_k, body.top_p, body.greedy)
        spec = JobSpec(
            self.vocab.symbols(body.prime),
            body.max_new_chars,
            options,
            body.seed,
            body.num_samples,
            tuple(map(self.vocab.symbols, body.stop)),
            body.logprobs,
            stream=self.stream,
        )
        check_spec(spec, self.limits, self.vocab)
        return spec

    def encode(self, spec: JobSpec, events: Iterable[Event], finish: Finish) -> dict:
        """The response body for the job's events (`JobFailed` if it failed)."""
        result = Collected.of(spec.num_samples, self.vocab, events)
        out = {
            "texts": result.texts,
            "finish_reasons": result.reasons,
            "usage": {"prime_chars": len(spec.prime), "generated_chars": sum(result.made)},
            "timings": finish(sum(result.made)),
        }
        if spec.logprobs:
            out["logprobs"] = result.logprobs
        return out


class GenerateSse(GenerateJson):
    """POST /generate/stream: an event per chunk of a row's characters (`index`, `text`, and `logprobs`
    when asked for), then `event: done` with the finish reasons, usage and timings, or `event: error`."""

    stream = True

    async def encode_stream(
        self, spec: JobSpec, events: AsyncIterable[Event | None], finish: Finish
    ) -> AsyncIterator[bytes]:
        """The stream's bytes for the job's events (None: a ping)."""
        result = Collected(spec.num_samples, self.vocab)
        async for event in events:
            match event:
                case None:
                    yield b": ping\n\n"
                case Text(row, text, entries):
                    text = result.readable.text(row, text)
                    yield sse({"index": row, "text": text, **({"logprobs": entries} if entries else {})})
                case Done(row):
                    if tail := result.readable.text(row, "", final=True):
                        yield sse({"index": row, "text": tail})
                    result.add(event)
                case Failed(message):
                    yield sse({"error": message}, "error")
                case End():
                    usage = {"prime_chars": len(spec.prime), "generated_chars": sum(result.made)}
                    done = {"finish_reasons": result.reasons, "usage": usage, "timings": finish(sum(result.made))}
                    yield sse(done, "done")


def sse(data: dict, event: str | None = None) -> bytes:
    """One server-sent event carrying `data` as JSON."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()
