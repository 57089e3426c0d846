"""The continuous-batching scheduler alone, in this process: rows, seeds, stop strings, cancelling, limits."""

import threading
import time

import pytest

import charrnn
from charrnn.errors import CharRNNError
from charrnn.generate.picking import SamplingOptions
from charrnn.generate.stops import StopMatcher
from charrnn.serve.job import Busy, Job
from charrnn.serve.protocol import Done, End, Failed, Text
from charrnn.serve.scheduler import Scheduler


def drain(job: Job, timeout: float = 30.0) -> dict:
    """Wait for the job's end; its texts, finish reasons and logprob entries by row."""
    texts, reasons, entries = {}, {}, {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while job.events:
            match job.events.popleft():
                case Text(row, text, new_entries):
                    texts[row] = texts.get(row, "") + text
                    entries.setdefault(row, []).extend(new_entries)
                case Done(row, reason, _):
                    reasons[row] = reason
                case End():
                    return {"texts": texts, "reasons": reasons, "entries": entries}
                case Failed(message):
                    raise AssertionError(message)
        time.sleep(0.002)
    raise AssertionError("the job did not end in time")


@pytest.fixture
def scheduler(tiny_run):
    s = Scheduler(charrnn.load(tiny_run), max_batch=4, max_queue=2)
    s.start()
    yield s
    s.stop()


def test_a_seeded_job_alone_is_what_the_sampler_gives(tiny_run, scheduler):
    options = dict(temperature=0.8, top_k=5, top_p=0.9)
    want = charrnn.load(tiny_run).generate("The ", 120, seed=11, **options)
    job = Job("The ", 120, SamplingOptions(**options), seed=11)
    scheduler.submit(job)
    assert drain(job) == {"texts": {0: want}, "reasons": {0: "length"}, "entries": {0: []}}


def test_jobs_share_the_batch_and_each_row_ends_by_itself(scheduler):
    jobs = [Job("A", n, SamplingOptions(), seed=n, num_samples=2 if n == 30 else 1) for n in (10, 30, 50)]
    for job in jobs:
        scheduler.submit(job)
    results = [drain(job) for job in jobs]
    assert [sorted(len(t) for t in r["texts"].values()) for r in results] == [[10], [30, 30], [50]]
    assert all(set(r["reasons"].values()) == {"length"} for r in results)
    assert results[1]["texts"][0] != results[1]["texts"][1]  # two rows, two generators
    assert scheduler.active_rows == 0


def test_a_stop_string_ends_the_row_and_is_left_out(tiny_run, scheduler):
    greedy = charrnn.load(tiny_run).generate("The ", 200, greedy=True)
    stop = greedy[40:43]
    job = Job("The ", 200, SamplingOptions(greedy=True), stop=(stop,))
    scheduler.submit(job)
    result = drain(job)
    assert result["texts"].get(0, "") == greedy[: greedy.index(stop)] and result["reasons"] == {0: "stop"}


def test_a_cancelled_job_frees_its_rows_at_the_next_tick(scheduler):
    job = Job("A", 10**6, SamplingOptions(), num_samples=3)
    scheduler.submit(job)
    deadline = time.monotonic() + 10
    while scheduler.active_rows < 3 and time.monotonic() < deadline:
        time.sleep(0.002)
    assert scheduler.active_rows == 3
    job.cancel()
    assert set(drain(job)["reasons"].values()) == {"cancelled"}
    assert scheduler.active_rows == 0


def test_beyond_the_batch_and_the_queue_is_busy(scheduler):
    long = [Job("A", 10**6, SamplingOptions(), num_samples=n) for n in (4, 2)]
    for job in long:
        scheduler.submit(job)  # four rows running, two waiting
    with pytest.raises(Busy):
        scheduler.submit(Job("A", 5, SamplingOptions()))
    for job in long:
        job.cancel()
    for job in long:
        drain(job)
    small = Job("A", 5, SamplingOptions())
    scheduler.submit(small)
    assert drain(small)["reasons"] == {0: "length"}


def test_logprobs_rank_the_likeliest_and_include_the_choice(scheduler):
    job = Job("The ", 20, SamplingOptions(greedy=True), logprobs=3)
    scheduler.submit(job)
    entries = drain(job)["entries"][0]
    assert len(entries) == 20
    for entry in entries:
        tops = [lp for _, lp in entry["top"]]
        assert tops == sorted(tops, reverse=True) and len(tops) == 3
        assert entry["top"][0][0] == entry["char"] and entry["logprob"] == pytest.approx(tops[0]) and tops[0] <= 0


def test_zero_characters_and_an_unknown_prime(scheduler):
    empty = Job("The", 0, SamplingOptions())
    scheduler.submit(empty)
    assert drain(empty) == {"texts": {}, "reasons": {0: "length"}, "entries": {}}
    bad = Job("☃", 5, SamplingOptions())
    scheduler.submit(bad)
    with pytest.raises(AssertionError, match="not in the model's vocabulary"):
        drain(bad)


@pytest.mark.parametrize(
    "stops, pieces, want",
    [
        (("\n\n",), ["ab", "\n", "c"], ["ab", "", "\nc"]),  # a newline is held until the next shows it is no stop
        (("\n\n",), ["ab\n", "\nzz"], ["ab", ""]),
        (("END",), ["xxE", "N", "D", "more"], ["xx", "", ""]),
        (("ab", "b"), ["xab"], ["x"]),  # the earliest stop wins
        ((), ["any", "text"], ["any", "text"]),
    ],
)
def test_stop_matcher_holds_back_only_what_may_be_a_stop(stops, pieces, want):
    matcher, got = StopMatcher(stops), []
    for piece in pieces:
        out, stopped = matcher.push(piece)
        got.append(out)
        if stopped:
            break
    assert got == want


def test_a_failing_model_loop_tells_every_job_and_takes_no_more(tiny_run):
    sampler = charrnn.load(tiny_run)
    s = Scheduler(sampler, max_batch=4, max_queue=8)
    calls = []

    def broken_step(ids, buffers):
        calls.append(1)
        raise RuntimeError("boom")

    s.sampler = type("Broken", (), {"step": staticmethod(broken_step), "warm_many": sampler.warm_many,
                                     "vocab": sampler.vocab, "device": sampler.device})()  # fmt: skip
    s.sampler.step.start = sampler.step.start
    jobs = [Job("A", 50, SamplingOptions(), num_samples=2) for _ in range(3)]  # two run, one waits
    for job in jobs:
        s.submit(job)
    s.start()
    for job in jobs:
        with pytest.raises(AssertionError, match="the model loop failed: RuntimeError"):
            drain(job)
    with pytest.raises(CharRNNError, match="the model loop failed"):
        s.submit(Job("A", 5, SamplingOptions()))
    s.stop()


def test_jobs_one_after_another_each_get_their_text(tiny_run, scheduler):
    want = charrnn.load(tiny_run).generate("The ", 300, seed=2)
    for _ in range(3):  # each after the batch emptied: the batch is formed afresh every time
        job = Job("The ", 300, SamplingOptions(), seed=2)
        scheduler.submit(job)
        assert drain(job)["texts"] == {0: want}


def test_a_rows_draws_do_not_depend_on_who_joins_or_leaves_the_batch(tiny_run):
    # At a high temperature the choice hangs on the draw, not on the rounding of batched products, so the
    # text shows whether the row drew its own numbers, in order, across every regrouping of the batch.
    options = SamplingOptions(temperature=30.0)
    want = charrnn.load(tiny_run).generate("The ", 300, seed=5, temperature=30.0)
    joiners = {20: Job("A", 40, options, seed=1), 70: Job("B", 200, options, seed=2, num_samples=2)}
    joiners[130] = Job("C", 5, SamplingOptions(greedy=True))
    ticks = []

    def join_at_tick(rows: int) -> None:
        ticks.append(rows)
        if len(ticks) in joiners:
            scheduler.submit(joiners[len(ticks)])
        if len(ticks) == 230:  # after more ticks in one batch than a row's block of draws holds
            joiners[70].cancel()

    scheduler = Scheduler(charrnn.load(tiny_run), max_batch=8, max_queue=2, on_tick=join_at_tick)
    job = Job("The ", 300, options, seed=5)
    scheduler.submit(job)
    scheduler.start()
    try:
        assert drain(job)["texts"] == {0: want}
        assert max(ticks) == 4 and 1 in ticks[ticks.index(4) :]  # it shared the batch, then ran alone again
    finally:
        scheduler.stop()


def test_a_job_not_streamed_wakes_its_reader_once_with_the_whole_text(scheduler):
    """A reader that drains whenever it is woken: a stream is woken as characters come, a job not
    streamed only at its end (not once a tick), with its first character's time set all the same."""
    texts, wakes = {}, {}
    for stream in (True, False):
        job = Job("The ", 3000, SamplingOptions(), seed=3, stream=stream)
        woken = threading.Event()
        job.wake = woken.set
        scheduler.submit(job)
        text, wakes[stream], ended = "", 0, False
        while not ended:
            assert woken.wait(30)
            woken.clear()
            wakes[stream] += 1
            job.drained()
            while job.events:
                event = job.events.popleft()
                text += event.text if isinstance(event, Text) else ""
                ended = isinstance(event, End)
        texts[stream] = text
        assert job.started <= job.first_char < time.perf_counter()
    assert texts[True] == texts[False] and len(texts[False]) == 3000
    assert wakes[False] == 1 and wakes[True] > 1


def counting_warms(sampler) -> list:
    """Record the primes each `warm_many` call reads."""
    calls, warm_many = [], sampler.warm_many
    sampler.warm_many = lambda primes: (calls.append(list(primes)), warm_many(primes))[1]
    return calls


@pytest.mark.parametrize("cache, reads", [(256, 1), (0, 2)])
def test_a_repeated_prime_is_read_once_and_gives_the_same_text(tiny_run, cache, reads):
    sampler = charrnn.load(tiny_run)
    calls = counting_warms(sampler)
    s = Scheduler(sampler, max_batch=4, max_queue=2, prime_cache=cache)
    s.start()
    try:
        texts = []
        for _ in range(2):
            job = Job("The cat ", 60, SamplingOptions(temperature=0.8), seed=3)
            s.submit(job)
            texts.append(drain(job)["texts"][0])
    finally:
        s.stop()
    assert calls == [["The cat "]] * reads
    assert texts[0] == texts[1] == charrnn.load(tiny_run).generate("The cat ", 60, seed=3, temperature=0.8)


def test_primes_read_together_are_not_kept(tiny_run):
    # Read in one batch, a prime's state may round otherwise than when read alone, as `charrnn sample` reads it.
    sampler = charrnn.load(tiny_run)
    calls = counting_warms(sampler)
    s = Scheduler(sampler, max_batch=4, max_queue=2)
    jobs = [Job(prime, 5, SamplingOptions(), seed=1, num_samples=2) for prime in ("The ", "And ")]
    for job in jobs:
        s.submit(job)
    s.start()
    try:
        for job in jobs:
            drain(job)
    finally:
        s.stop()
    assert calls == [["The ", "And "]] and len(s.primes) == 0
