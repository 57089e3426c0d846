"""`Vocab`: the model's characters in code-point order, and text <-> id arrays.

Sorted order (not `set()` order, which changes between processes) makes the same text give the
same vocabulary everywhere. Ids are stored in the narrowest unsigned dtype that holds them, so an
encoded corpus costs one byte per character for ordinary text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import CharRNNError

_CHUNK_CHARS = 1 << 22  # encode in chunks so a huge text never becomes a huge int32 array at once


def _code_points(text: str) -> np.ndarray:
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
        if not text:
            raise CharRNNError("cannot build a vocabulary from empty text")
        seen: set[int] = set()
        for start in range(0, len(text), _CHUNK_CHARS):
            seen.update(np.unique(_code_points(text[start : start + _CHUNK_CHARS])).tolist())
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
        table = self._lookup_table()
        out = np.empty(len(text), dtype=self.dtype)
        for start in range(0, len(text), _CHUNK_CHARS):
            cps = _code_points(text[start : start + _CHUNK_CHARS])
            inside = cps < len(table)
            ids = np.where(inside, table[np.minimum(cps, len(table) - 1)], -1)
            if (ids < 0).any():
                raise CharRNNError(self._unknown_message(cps[ids < 0]))
            out[start : start + len(cps)] = ids
        return out

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
