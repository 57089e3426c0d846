"""`ServeLimits`: what one server allows, each limit declared once (settings.py); `charrnn serve`'s flags
are derived from it. Needs neither FastAPI nor torch, so the command line can be built without the extra."""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import check, non_negative, positive


@dataclass(frozen=True)
class ServeLimits:
    max_batch: int = positive(64, "rows generated together each step")
    max_queue: int = positive(256, "rows that may wait for the batch; beyond: 429")
    max_length: int = positive(5000, "characters one sample may ask for")
    max_prime: int = positive(10_000, "characters of prime or prompt", flag=False)
    max_body: int = positive(64 * 1024, "bytes of request body", flag=False)
    ping_s: float = positive(10.0, "a comment line on an idle stream, so proxies keep it open", flag=False)
    gather_s: float = positive(
        0.05, "a stream collects characters at least this long before sending them: fewer, larger events", flag=False
    )
    # An event costs the server and its client about the same CPU whatever it holds, so with many streams
    # open each one gathers for longer.
    stream_events: float = positive(
        200.0,
        "events a second all open streams send together, at most: with many streams open, each sends "
        "larger chunks less often (a stream sends at most every 50 ms)",
    )
    prime_cache: int = non_negative(
        256, "primes whose model state is kept, so that a request repeating one starts at once (0: none)"
    )

    def __post_init__(self):
        check(self)
