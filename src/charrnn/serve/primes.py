"""Primes the server has read lately, and where each left the model: a prime asked for again (a page's
default text, a preamble many clients share, a burst of clients with one prompt) starts from here
instead of being read through the model again. A recurrent model's whole past is its state, so a hit
is exact, and the cache holds a few kilobytes a prime."""

from __future__ import annotations

from collections import OrderedDict

from ..model.network import State


class PrimeCache:
    """The `size` primes used last (least recently used go first); size 0 keeps none."""

    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict[str, tuple[int, State]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, prime: str) -> tuple[int, State] | None:
        """(the prime's last character id, the state after the rest of it, one row), or None."""
        entry = self._entries.get(prime)
        if entry is not None:
            self._entries.move_to_end(prime)
        return entry

    def put(self, prime: str, last_id: int, state: State) -> None:
        """Remember `prime`'s one-row state; a copy, so no caller's later writes reach it."""
        if self.size == 0:
            return
        self._entries[prime] = (last_id, tuple(part.clone() for part in state))
        self._entries.move_to_end(prime)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
