"""Stop strings: a sample ends where one appears, and the stop itself is left out (as OpenAI's `stop`).

Text that may be the start of a stop string is held back until the next characters decide it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class StopMatcher:
    """Holds back text that may be the start of a stop string until it is decided; ends at the first stop."""

    def __init__(self, stops: tuple[str, ...]):
        self.stops = tuple(s for s in stops if s)
        self.text = ""
        self.sent = 0

    def push(self, chars: str) -> tuple[str, bool]:
        """(text that may go out now, whether a stop string was reached); the stop itself never goes out."""
        self.text += chars
        hits = [self.text.find(s, max(0, self.sent - len(s) + 1)) for s in self.stops]
        hits = [h for h in hits if h >= 0]
        if hits:
            end = min(hits)
            out, self.sent = self.text[self.sent : end], end
            return out, True
        hold = max((k for s in self.stops for k in range(1, len(s)) if self.text.endswith(s[:k])), default=0)
        end = max(self.sent, len(self.text) - hold)
        out, self.sent = self.text[self.sent : end], end
        return out, False

    def flush(self) -> str:
        out, self.sent = self.text[self.sent :], len(self.text)
        return out


def until_stop(chars: Iterable[str], stops: Iterable[str]) -> Iterator[str]:
    """`chars`' text as it is decided, in pieces, ending before the first stop string."""
    matcher = StopMatcher(tuple(stops))
    if not matcher.stops:
        yield from chars
        return
    for char in chars:
        text, stopped = matcher.push(char)
        if text:
            yield text
        if stopped:
            return
    if rest := matcher.flush():
        yield rest


def cut_at_stop(text: str, stops: Iterable[str]) -> str:
    """`text` up to the first stop string in it."""
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return text[: min(hits)] if hits else text
