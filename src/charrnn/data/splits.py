"""`--split TRAIN,VAL,TEST`: a text cut into training, validation and test parts, in file order, as the
literature cuts its corpora (enwik8 and text8: 90M,5M,5M; Karpathy et al. 2015: fractions of the file).

Fractions (`0.9,0.05,0.05`) must add up to 1; counts of symbols (`90M,5M,5M`, with K, M and G meaning
10^3, 10^6 and 10^9 as enwik8's sizes do) are taken from the start and must fit the text (what is left
after them is used by no part). The test part is read by nothing but `charrnn eval --split test`.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

import numpy as np

from ..errors import CharRNNError

PARTS = ("train", "valid", "test")
_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}


@dataclass(frozen=True)
class Split:
    sizes: tuple[float, float, float]
    counts: bool  # the sizes are numbers of symbols, not fractions

    @classmethod
    def parse(cls, text: str) -> Split:
        """The split `text` names; `CharRNNError` saying what a valid one looks like."""
        pieces = [piece.strip() for piece in str(text).split(",")]
        usage = (
            f"split (--split) must be TRAIN,VAL,TEST as fractions (0.9,0.05,0.05) or counts (90M,5M,5M), got {text!r}"
        )
        if len(pieces) != 3:
            raise CharRNNError(usage)
        counts = [re.fullmatch(r"(\d+)([KMG]?)", piece.upper()) for piece in pieces]
        if all(counts):
            sizes = tuple(float(int(m.group(1)) * _SUFFIX[m.group(2)]) for m in counts)
            if sizes[0] < 1:
                raise CharRNNError(f"split (--split) needs a training part, got {text!r}")
            return cls(sizes, counts=True)
        try:
            sizes = tuple(float(piece) for piece in pieces)
        except ValueError:
            raise CharRNNError(usage) from None
        if any(not 0 <= size <= 1 for size in sizes) or abs(sum(sizes) - 1) > 1e-9 or sizes[0] == 0:
            raise CharRNNError(
                f"split (--split) fractions must be in [0, 1], the first above 0, and add up to 1, got {text!r}"
            )
        return cls(sizes, counts=False)

    def bounds(self, length: int) -> tuple[int, int, int]:
        """Where training ends, validation ends and the test part ends, in a text of `length` symbols."""
        if self.counts:
            train, val, test = (int(size) for size in self.sizes)
            if train + val + test > length:
                raise CharRNNError(
                    f"split (--split) asks for {train + val + test:,} symbols but the text has {length:,}"
                )
            return train, train + val, train + val + test
        train_end = round(length * self.sizes[0])
        val_end = length - round(length * self.sizes[2])
        return train_end, val_end, length

    def parts(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The training, validation and test parts of `ids` (views, in file order)."""
        train_end, val_end, end = self.bounds(len(ids))
        return ids[:train_end], ids[train_end:val_end], ids[val_end:end]


def split_flag(text: str) -> str:
    """`--split`'s argparse type: the text as given, once it parses (a bad one exits 2 in one line)."""
    try:
        Split.parse(text)
    except CharRNNError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("split (--split) ")) from None
    return text
