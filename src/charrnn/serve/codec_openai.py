"""OpenAI's legacy completions, for characters (a token is one character): POST /v1/completions, one JSON
body out or, with `stream`, `data:` chunks ending in `data: [DONE]`. The codec decodes a request into a
`JobSpec` and encodes the job's events; it needs no HTTP to be tested."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable

from ..data.vocab import Vocab
from .codec_generate import Collected, Readable
from .limits import ServeLimits
from .protocol import Done, End, Event, Failed, JobSpec, Text
from .schemas import CompletionRequest, Rejected, check_spec, sampling_options

# /generate's field names, as a completion request calls them (for the 422s `check_spec` gives)
FIELD_NAMES = {"prime": "prompt", "max_new_chars": "max_tokens", "num_samples": "n"}


class Completions:
    """One completion request's codec: `meta` (id, created, model) heads every body or chunk; `echoed`,
    when the request echoes its prompt, is the prompt's own logprobs object (`scoring.openai_logprobs`)."""

    def __init__(self, body: CompletionRequest, vocab: Vocab, meta: dict, echoed: dict | None = None):
        self.body, self.vocab, self.meta, self.echoed = body, vocab, meta, echoed

    @staticmethod
    def decode(body: CompletionRequest, limits: ServeLimits, vocab: Vocab) -> JobSpec:
        """The job `body` asks for, or `Rejected` naming the fields as the request does."""
        try:
            prompt = body.prompt_text()
        except ValueError as exc:
            raise Rejected([{"loc": ["body", "prompt"], "msg": str(exc), "type": "value_error"}]) from None
        options = sampling_options(body.temperature, body.top_k, body.top_p, False)
        logprobs = body.logprobs or 0
        stops = tuple(map(vocab.symbols, body.stops()))
        spec = JobSpec(vocab.symbols(prompt), body.max_tokens, options, body.seed, body.n, stops, logprobs, body.stream)
        check_spec(spec, limits, vocab, FIELD_NAMES)
        return spec

    def encode(self, spec: JobSpec, events: Iterable[Event], finish: Callable[[int], dict]) -> dict:
        """The response body for the job's events (`JobFailed` if it failed)."""
        result, echo = Collected.of(spec.num_samples, self.vocab, events), self.body.echo
        prompt = self.body.prompt_text()
        choices = []
        for index in range(spec.num_samples):
            logprobs = None
            if self.body.logprobs is not None:
                logprobs = logprobs_object(result.logprobs[index], self.echoed, len(spec.prime) if echo else 0)
            choices.append({
                "text": (prompt if echo else "") + result.texts[index],
                "index": index,
                "logprobs": logprobs,
                "finish_reason": result.reasons[index],
            })  # fmt: skip
        made = sum(result.made)
        usage = {"prompt_tokens": len(spec.prime), "completion_tokens": made, "total_tokens": len(spec.prime) + made}
        finish(made)
        return {**self.meta, "object": "text_completion", "choices": choices, "usage": usage}

    async def encode_stream(
        self, spec: JobSpec, events: AsyncIterable[Event | None], finish: Callable[[int], dict]
    ) -> AsyncIterator[bytes]:
        """The stream's chunks for the job's events (None: a ping), the echoed prompt first."""
        if self.body.echo:
            for index in range(spec.num_samples):
                yield self.chunk(index, self.body.prompt_text(), None, None)
        made, readable = 0, Readable(self.vocab, spec.num_samples)
        async for event in events:
            match event:
                case None:
                    yield b": ping\n\n"
                case Text(row, text, entries):
                    yield self.chunk(row, readable.text(row, text), None, entries)
                case Done(row, reason, count):
                    made += count
                    yield self.chunk(row, readable.text(row, "", final=True), reason, [])
                case Failed(message):
                    yield _data({"error": {"message": message, "type": "server_error"}})
                case End():
                    finish(made)
                    yield b"data: [DONE]\n\n"

    def chunk(self, index: int, text: str, reason: str | None, entries: list | None) -> bytes:
        wanted = self.body.logprobs is not None and entries is not None
        choice = {
            "text": text,
            "index": index,
            "logprobs": logprobs_object(entries, None, 0) if wanted else None,
            "finish_reason": reason,
        }
        return _data({**self.meta, "object": "text_completion", "choices": [choice]})


def logprobs_object(entries: list[dict], echoed: dict | None, offset_start: int) -> dict:
    """OpenAI's legacy logprobs object from per-character entries (after the echoed prompt's, if any)."""
    tokens, token_logprobs, top, offsets = [], [], [], []
    if echoed is not None:
        tokens, token_logprobs = list(echoed["tokens"]), list(echoed["token_logprobs"])
        top, offsets = list(echoed["top_logprobs"]), list(range(len(echoed["tokens"])))
    for k, entry in enumerate(entries):
        tokens.append(entry["char"])
        token_logprobs.append(entry["logprob"])
        top.append(dict(entry["top"]))
        offsets.append(offset_start + k)
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top, "text_offset": offsets}


def _data(payload: dict) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()
