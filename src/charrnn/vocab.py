"""`Vocab`: the model's characters in code-point order, and text <-> id arrays.

Sorted order (not `set()` order, which changes between processes) makes the same text give the
same vocabulary everywhere. Ids are stored in the narrowest unsigned dtype that holds them, so an
encoded corpus costs one byte per character for ordinary text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .errors import CharRNNError

_CHUNK_CHARS = 1 << 22  # encode in chunks so a huge text never becomes a huge int32 array at once


def code_points(text: str) -> np.ndarray:
    # surrogatepass keeps lone surrogates (from --errors surrogateescape) encodable.
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def id_dtype(vocab_size: int) -> np.dtype:
    if vocab_size <= 1 << 8:
        return np.dtype(np.uint8)
    if vocab_size <= 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


@dataclass(frozen=True)
class Vocab:
    chars: tuple[str, ...]

    def __post_init__(self):
        if not self.chars:
            raise CharRNNError("vocabulary is empty")
        if list(self.chars) != sorted(set(self.chars)) or any(len(c) != 1 for c in self.chars):
            raise CharRNNError("vocabulary must be distinct single characters in code-point order")

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        return cls.from_chunks(text[start : start + _CHUNK_CHARS] for start in range(0, len(text), _CHUNK_CHARS))

    @classmethod
    def from_chunks(cls, chunks: Iterable[str]) -> Vocab:
        """The vocabulary of a text given in pieces (so it never has to be in memory whole)."""
        seen: set[int] = set()
        for chunk in chunks:
            seen.update(np.unique(code_points(chunk)).tolist())
        if not seen:
            raise CharRNNError("cannot build a vocabulary from empty text")
        return cls(tuple(chr(cp) for cp in sorted(seen)))

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def dtype(self) -> np.dtype:
        return id_dtype(len(self.chars))

    def _lookup_table(self) -> np.ndarray:
        table = np.full(ord(self.chars[-1]) + 1, -1, dtype=np.int64)
        table[[ord(c) for c in self.chars]] = np.arange(len(self.chars))
        return table

    def encode(self, text: str) -> np.ndarray:
        """Ids of `text`; characters outside the vocabulary raise `CharRNNError` naming them."""
        chunks = (text[start : start + _CHUNK_CHARS] for start in range(0, len(text), _CHUNK_CHARS))
        return self.encode_chunks(chunks, len(text))

    def encode_chunks(self, chunks: Iterable[str], max_chars: int) -> np.ndarray:
        """Ids of a text given in pieces, at most `max_chars` long in all.

        The output is allocated at the upper bound and returned as a view of its used part: pages
        never written are never backed by memory, so the cost is one id per character actually read.
        """
        table = self._lookup_table()
        out = np.empty(max_chars, dtype=self.dtype)
        used = 0
        for chunk in chunks:
            cps = code_points(chunk)
            ids = np.where(cps < len(table), table[np.minimum(cps, len(table) - 1)], -1)
            if (ids < 0).any():
                raise CharRNNError(self._unknown_message(cps[ids < 0]))
            if used + len(ids) > max_chars:
                raise ValueError("text longer than max_chars")
            out[used : used + len(ids)] = ids
            used += len(ids)
        return out[:used]

    def _unknown_message(self, unknown_cps: np.ndarray) -> str:
        names = ", ".join(repr(chr(cp)) for cp in np.unique(unknown_cps)[:10].tolist())
        more = "" if len(np.unique(unknown_cps)) <= 10 else " and more"
        return f"characters not in the model's vocabulary: {names}{more}"

    def decode(self, ids) -> str:
        chars = self.chars
        return "".join(chars[i] for i in np.asarray(ids).reshape(-1).tolist())

    def to_json(self) -> list[str]:
        return list(self.chars)

    @classmethod
    def from_json(cls, data) -> Vocab:
        if not isinstance(data, list) or not all(isinstance(c, str) for c in data):
            raise CharRNNError("vocabulary in checkpoint metadata is not a list of characters")
        return cls(tuple(data))
