"""`Vocab`: the model's characters in code-point order, and text <-> id arrays.

Sorted order (not `set()` order, which changes between processes) makes the same text give the
same vocabulary everywhere. A byte-level vocabulary (`--bytes`) holds byte values: its symbols are
strings with one character per byte (the byte's value as a code point, as latin-1 decodes), so every
stage handles them as text; `symbols` and `to_bytes`/`readable` convert at the edges, where a user's
text comes in and where bytes go out. Ids are stored in the narrowest unsigned dtype that holds them, so an
encoded corpus costs one byte per character for ordinary text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import CharRNNError

_CHUNK_CHARS = 1 << 22  # encode in chunks so a huge text never becomes a huge int32 array at once
_DENSE = 1 << 16  # code points below this are counted in a table when building a vocabulary


def one_byte_points(text: str) -> bytes | None:
    """`text`'s code points as bytes when all are below 256 (most text), else None: the fast path."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return None


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
    byte_level: bool = False  # the symbols are byte values (chr(0)..chr(255)), not characters

    def __post_init__(self):
        if not self.chars:
            raise CharRNNError("vocabulary is empty")
        if list(self.chars) != sorted(set(self.chars)) or any(len(c) != 1 for c in self.chars):
            raise CharRNNError("vocabulary must be distinct single characters in code-point order")
        if self.byte_level and ord(self.chars[-1]) > 255:
            raise CharRNNError("a byte vocabulary holds values 0 to 255 only")

    @property
    def symbol(self) -> str:
        """What one id stands for, as figures name it: "byte" or "char"."""
        return "byte" if self.byte_level else "char"

    def symbols(self, text: str) -> str:
        """A user's text as this vocabulary's symbols: itself, or for bytes its UTF-8 bytes."""
        return text.encode("utf-8", "surrogateescape").decode("latin-1") if self.byte_level else text

    def to_bytes(self, symbols: str) -> bytes:
        """Symbols as the bytes to write out: for bytes exactly those bytes, for characters UTF-8."""
        return symbols.encode("latin-1") if self.byte_level else symbols.encode("utf-8", "surrogateescape")

    def shown(self, symbol: str) -> str:
        """One symbol as a listing shows it: a character's repr, a byte's (b'a', b'\\xc3')."""
        return repr(symbol.encode("latin-1")) if self.byte_level else repr(symbol)

    def readable(self, symbols: str) -> str:
        """Symbols as text to show: for bytes decoded as UTF-8, invalid sequences replaced (U+FFFD)."""
        return symbols.encode("latin-1").decode("utf-8", "replace") if self.byte_level else symbols

    @classmethod
    def from_text(cls, text: str, as_bytes: bool = False) -> Vocab:
        pieces = (text[start : start + _CHUNK_CHARS] for start in range(0, len(text), _CHUNK_CHARS))
        return cls.from_chunks(pieces, as_bytes)

    @classmethod
    def from_chunks(cls, chunks: Iterable[str], as_bytes: bool = False) -> Vocab:
        """The vocabulary of a text given in pieces (so it never has to be in memory whole): code points
        below 65,536 are counted in a table, the rare ones above by `np.unique`."""
        dense = np.zeros(_DENSE, dtype=np.int64)
        rare: set[int] = set()
        for chunk in chunks:
            narrow = one_byte_points(chunk)
            if narrow is not None:
                dense[:256] += np.bincount(np.frombuffer(narrow, dtype=np.uint8), minlength=256)
                continue
            cps = code_points(chunk)
            small = cps < _DENSE
            dense += np.bincount(cps[small], minlength=_DENSE)
            rare.update(np.unique(cps[~small]).tolist())
        seen = [int(cp) for cp in np.nonzero(dense)[0]] + sorted(rare)
        if not seen:
            raise CharRNNError("cannot build a vocabulary from empty text")
        return cls(tuple(chr(cp) for cp in seen), byte_level=as_bytes)

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def lead_in(self) -> str:
        """What a prime is read after: a line break, where texts and paragraphs start, when the vocabulary
        has one. The zero state itself is followed by few contexts in training (each epoch's stream starts),
        so a prime read straight from it can go astray; the state after a line break is one the model knows."""
        return "\n" if "\n" in self.chars else ""

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
        byte_table = np.full(256, -1, dtype=np.int64)
        byte_table[: min(len(table), 256)] = table[:256]
        known_bytes = bytes(np.nonzero(byte_table >= 0)[0].astype(np.uint8))
        byte_ids = np.maximum(byte_table, 0).astype(self.dtype)
        id_bytes = bytes(byte_ids.astype(np.uint8)) if self.dtype == np.uint8 else None
        out = np.empty(max_chars, dtype=self.dtype)
        used = 0
        for chunk in chunks:
            narrow = one_byte_points(chunk)
            count = len(chunk)
            if used + count > max_chars:
                raise ValueError("text longer than max_chars")
            if narrow is not None:  # one-byte characters: bytes.translate checks and maps them
                unknown = narrow.translate(None, known_bytes)
                if unknown:
                    raise CharRNNError(self._unknown_message(np.frombuffer(unknown, dtype=np.uint8)))
                if id_bytes is not None:
                    out[used : used + count] = np.frombuffer(narrow.translate(id_bytes), dtype=np.uint8)
                else:
                    np.take(byte_ids, np.frombuffer(narrow, dtype=np.uint8), out=out[used : used + count])
            else:
                cps = code_points(chunk)
                ids = np.where(cps < len(table), table[np.minimum(cps, len(table) - 1)], -1)
                if (ids < 0).any():
                    raise CharRNNError(self._unknown_message(cps[ids < 0]))
                out[used : used + count] = ids
            used += count
        return out[:used]

    def _unknown_message(self, unknown_cps: np.ndarray) -> str:
        names = ", ".join(self.shown(chr(cp)) for cp in np.unique(unknown_cps)[:10].tolist())
        more = "" if len(np.unique(unknown_cps)) <= 10 else " and more"
        return f"{'bytes' if self.byte_level else 'characters'} not in the model's vocabulary: {names}{more}"

    def decode(self, ids) -> str:
        chars = self.chars
        return "".join(chars[i] for i in np.asarray(ids).reshape(-1).tolist())

    def to_json(self) -> list[str] | dict:
        """The characters as a list (as every run has saved them), or for bytes {"bytes": [values]}."""
        return {"bytes": [ord(c) for c in self.chars]} if self.byte_level else list(self.chars)

    @classmethod
    def from_json(cls, data) -> Vocab:
        if isinstance(data, dict) and isinstance(data.get("bytes"), list):
            values = data["bytes"]
            if not all(isinstance(v, int) and 0 <= v <= 255 for v in values):
                raise CharRNNError("byte vocabulary in checkpoint metadata holds values outside 0-255")
            return cls(tuple(chr(v) for v in values), byte_level=True)
        if not isinstance(data, list) or not all(isinstance(c, str) for c in data):
            raise CharRNNError("vocabulary in checkpoint metadata is not a list of characters")
        return cls(tuple(data))
