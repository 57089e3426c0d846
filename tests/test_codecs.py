"""The serving protocol without HTTP: each wire format's codec decodes a request into a job spec and
encodes a job's events, and the typed messages survive the pipe's framing."""

import asyncio
import json
import pickle

import pytest

from charrnn.data.vocab import Vocab
from charrnn.generate.picking import SamplingOptions
from charrnn.serve.codec_generate import GenerateJson, GenerateSse, JobFailed
from charrnn.serve.codec_openai import Completions
from charrnn.serve.frames import frame
from charrnn.serve.job import Job
from charrnn.serve.limits import ServeLimits
from charrnn.serve.protocol import Done, End, Events, Failed, JobEvents, JobSpec, Submit, Text, is_final
from charrnn.serve.reader import joined
from charrnn.serve.schemas import CompletionRequest, GenerateRequest, Rejected

VOCAB = Vocab.from_text("\nThe cat sat. ")
LIMITS = ServeLimits(max_batch=4, max_length=50)
ENTRY = {"char": "a", "logprob": -0.5, "top": [["a", -0.5], ["t", -1.5]]}
EVENTS = [Text(0, "ca", []), Text(1, "t", []), Done(1, "stop", 3), Text(0, "t", []), Done(0, "length", 3), End()]


def finished(calls: list):
    """A `finish` that records the characters it was told of and gives fixed timings."""
    return lambda generated: calls.append(generated) or {"total_s": 0.5}


async def _listed(events):
    for event in events:
        yield event


def streamed(encode_stream, spec, events, finish) -> list[bytes]:
    async def run():
        return [chunk async for chunk in encode_stream(spec, _listed(events), finish)]

    return asyncio.run(run())


def test_generate_decodes_a_body_into_the_job_it_asks_for():
    body = GenerateRequest(prime="The", max_new_chars=7, temperature=0.5, top_k=3, seed=9, num_samples=2, stop=["."])
    spec = GenerateJson(LIMITS, VOCAB).decode(body)
    assert spec == JobSpec("The", 7, SamplingOptions(0.5, 3, 1.0, False), 9, 2, (".",), 0, stream=False)
    assert GenerateSse(LIMITS, VOCAB).decode(body).stream is True


def test_generate_refuses_what_the_server_will_not_take_naming_each_field():
    body = GenerateRequest(prime="Thx", max_new_chars=51, num_samples=5, stop=[""])
    with pytest.raises(Rejected) as refused:
        GenerateJson(LIMITS, VOCAB).decode(body)
    fields = [tuple(error["loc"]) for error in refused.value.detail]
    assert fields == [("body", "max_new_chars"), ("body", "num_samples"), ("body", "stop", 0), ("body", "prime")]
    assert "'x'" in refused.value.detail[-1]["msg"]


def test_generate_encodes_the_rows_their_reasons_and_usage():
    spec = JobSpec("The", 3, SamplingOptions(), num_samples=2)
    calls = []
    body = GenerateJson(LIMITS, VOCAB).encode(spec, EVENTS, finished(calls))
    assert body == {
        "texts": ["cat", "t"],
        "finish_reasons": ["length", "stop"],
        "usage": {"prime_chars": 3, "generated_chars": 6},
        "timings": {"total_s": 0.5},
    }
    assert calls == [6]
    spec.logprobs = 2
    with_entries = [Text(0, "a", [ENTRY]), Done(0, "length", 1), End()]
    assert GenerateJson(LIMITS, VOCAB).encode(spec, with_entries, finished([]))["logprobs"] == [[ENTRY], []]


def test_a_failed_job_is_a_failure_not_a_body():
    spec = JobSpec("The", 3, SamplingOptions())
    calls = []
    with pytest.raises(JobFailed, match="the model process ended"):
        GenerateJson(LIMITS, VOCAB).encode(spec, [Text(0, "a", []), Failed("the model process ended")], finished(calls))
    assert calls == []


def test_the_stream_sends_each_chunk_then_done_with_usage_and_pings_when_idle():
    spec = JobSpec("The", 3, SamplingOptions(), num_samples=2)
    calls = []
    chunks = streamed(GenerateSse(LIMITS, VOCAB).encode_stream, spec, [None, *EVENTS], finished(calls))
    assert chunks[0] == b": ping\n\n"
    texts = [json.loads(c.decode()[len("data: ") :]) for c in chunks[1:4]]
    assert texts == [{"index": 0, "text": "ca"}, {"index": 1, "text": "t"}, {"index": 0, "text": "t"}]
    head, data = chunks[4].decode().split("\n", 1)
    assert head == "event: done" and json.loads(data[len("data: ") :])["finish_reasons"] == ["length", "stop"]
    assert calls == [6] and len(chunks) == 5
    failed = streamed(GenerateSse(LIMITS, VOCAB).encode_stream, spec, [Failed("gone")], finished([]))
    assert failed == [b'event: error\ndata: {"error": "gone"}\n\n']


def test_completions_decode_with_openais_field_names():
    body = CompletionRequest(prompt=["The"], max_tokens=5, n=2, stop=".", logprobs=2, stream=True)
    spec = Completions.decode(body, LIMITS, VOCAB)
    assert spec == JobSpec("The", 5, SamplingOptions(), None, 2, (".",), 2, True)
    over = CompletionRequest(prompt="Thq", max_tokens=99, n=9)
    with pytest.raises(Rejected) as refused:
        Completions.decode(over, LIMITS, VOCAB)
    assert [e["loc"][1] for e in refused.value.detail] == ["max_tokens", "n", "prompt"]
    with pytest.raises(Rejected, match="one prompt per request"):
        Completions.decode(CompletionRequest(prompt=["a", "b"]), LIMITS, VOCAB)


def test_completions_echo_the_prompt_with_its_logprobs_before_the_new_characters():
    body = CompletionRequest(prompt="Th", max_tokens=1, logprobs=1, echo=True)
    echoed = {"tokens": ["T", "h"], "token_logprobs": [None, -1.0], "top_logprobs": [None, {"h": -1.0}]}
    spec = Completions.decode(body, LIMITS, VOCAB)
    calls = []
    out = Completions(body, VOCAB, {"id": "cmpl-1"}, echoed).encode(
        spec, [Text(0, "a", [ENTRY]), Done(0, "length", 1), End()], finished(calls)
    )
    choice = out["choices"][0]
    assert choice["text"] == "Tha" and choice["finish_reason"] == "length" and out["id"] == "cmpl-1"
    assert choice["logprobs"]["tokens"] == ["T", "h", "a"] and choice["logprobs"]["text_offset"] == [0, 1, 2]
    assert out["usage"] == {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3} and calls == [1]


def test_streamed_completions_count_their_characters_and_end_with_done():
    body = CompletionRequest(prompt="The", max_tokens=3, n=2, stream=True)
    spec = Completions.decode(body, LIMITS, VOCAB)
    calls = []
    chunks = streamed(Completions(body, VOCAB, {"id": "cmpl-2"}).encode_stream, spec, EVENTS, finished(calls))
    assert chunks[-1] == b"data: [DONE]\n\n"
    choices = [json.loads(c.decode()[len("data: ") :])["choices"][0] for c in chunks[:-1]]
    assert [c["text"] for c in choices] == ["ca", "t", "", "t", ""]
    assert [c["finish_reason"] for c in choices] == [None, None, "stop", None, "length"]
    assert calls == [6]  # a streamed completion's characters reach the server's metrics too


def test_a_rows_text_events_that_arrived_together_are_joined():
    batch = [Text(0, "a", [1]), Text(1, "b", []), Text(0, "c", [2]), Done(0, "length", 2), Text(0, "d", []), End()]
    assert joined(batch) == [Text(0, "ac", [1, 2]), Text(1, "b", []), Done(0, "length", 2), Text(0, "d", []), End()]


def test_the_pipes_messages_survive_its_framing_and_a_job_keeps_its_spec():
    spec = JobSpec("The", 3, SamplingOptions(top_k=2), 1, 2, ("x",), 1, False)
    assert Job.of(spec).spec() == spec
    message = Events([JobEvents(3, EVENTS, 1.0, None)], (1, 2, 3), {4: 5})
    for sent in (message, Submit(7, spec)):
        assert pickle.loads(frame(sent)[4:]) == sent
    assert [is_final(e) for e in EVENTS] == [False] * 5 + [True] and is_final(Failed("x"))
