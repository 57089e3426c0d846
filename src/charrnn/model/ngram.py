"""An interpolated Kneser–Ney n-gram model over a run's symbols: the baseline papers put beside their
character-level LSTMs (Karpathy, Johnson and Fei-Fei 2015 went up to 20-grams).

Counting is numpy over the whole text at once: every k-gram is a 64-bit polynomial hash of its ids,
computed for all positions by one multiply-add per order, and counted by sorting. Nothing is kept per
n-gram but sorted arrays, and the model is fitted and evaluated one order at a time (order k needs the
(k+1)-grams for its continuation counts), so memory stays at a few arrays the length of the text.
A hash collision (two different k-grams with one hash, about 2^-64 per pair) would merge their counts.

The estimate (Chen and Goodman 1999, interpolated, one discount per order D = n1 / (n1 + 2 n2)):
    p_k(w | h) = (max(c_k(hw) - D_k, 0) + D_k T_k(h) p_{k-1}(w | h')) / S_k(h)   where S_k(h) > 0
    p_k(w | h) = p_{k-1}(w | h')                                                  where h was never seen
with c_N the raw counts at the highest order and, below it, continuation counts (how many distinct
symbols precede hw; the text's first k-gram counts one more, for the start of the text); S_k(h) the sum
of c_k(hw) over w and T_k(h) the number of w with c_k(hw) > 0; p_0 is uniform over the vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LN2 = float(np.log(2))

_BASE = np.uint64(0x9E3779B97F4A7C15)  # an odd 64-bit multiplier; arithmetic wraps modulo 2^64


def gram_hashes(ids: np.ndarray, k: int, previous: np.ndarray | None = None) -> np.ndarray:
    """The hash of every k-gram of `ids` (len(ids) - k + 1 of them), from the (k-1)-grams' `previous`."""
    symbols = ids.astype(np.uint64) + np.uint64(1)  # 0 is the empty gram's hash
    if k == 0:
        return np.zeros(len(ids) + 1, dtype=np.uint64)
    if previous is None:
        previous = gram_hashes(ids, k - 1)
    with np.errstate(over="ignore"):
        return previous[: len(ids) - k + 1] * _BASE + symbols[k - 1 :]


@dataclass
class _Order:
    """One order's counts, as sorted arrays: the k-grams' keys with their counts, and the contexts'
    keys with S (their counts' sum) and T (how many k-grams follow them)."""

    keys: np.ndarray
    counts: np.ndarray
    context_keys: np.ndarray
    sums: np.ndarray
    types: np.ndarray
    discount: float


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """values[keys == query] for each query, 0 where the query is not among the sorted `keys`."""
    at = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return np.where(keys[at] == queries, values[at], 0) if len(keys) else np.zeros(len(queries))


def _order(ids: np.ndarray, grams: np.ndarray, contexts: np.ndarray, longer: np.ndarray | None) -> _Order:
    """Order k's counts from the k-grams' hashes (`grams`), their contexts' (`contexts`, the (k-1)-gram
    starting at the same place) and, below the highest order, the (k+1)-grams' (`longer`)."""
    keys, first, raw = np.unique(grams, return_index=True, return_counts=True)
    if longer is None:
        counts = raw
    else:  # continuation counts: distinct (k+1)-grams ending in this k-gram, plus the text's start
        _, longer_first = np.unique(longer, return_index=True)
        suffixes = grams[longer_first + 1]
        counts = _lookup(*np.unique(suffixes, return_counts=True), keys)
        counts[np.searchsorted(keys, grams[0])] += 1
    counts = counts.astype(np.float64)
    context_of = contexts[first]
    order = np.argsort(context_of, kind="stable")
    context_keys, starts = np.unique(context_of[order], return_index=True)
    sums = np.add.reduceat(counts[order], starts) if len(starts) else np.zeros(0)
    types = np.diff(np.append(starts, len(order))).astype(np.float64)
    n1, n2 = np.count_nonzero(counts == 1), np.count_nonzero(counts == 2)
    discount = n1 / (n1 + 2 * n2) if n1 else 0.5
    return _Order(keys, counts, context_keys, sums, types, discount)


def kneser_ney_log_probs(train: np.ndarray, parts: list[np.ndarray], order: int, vocab_size: int) -> list[np.ndarray]:
    """Each symbol's natural-log probability in each of `parts`, under an interpolated Kneser–Ney model of
    `order` fitted on `train`; a symbol's context is what precedes it in its own part."""
    if order < 1:
        raise ValueError("order must be at least 1")
    probs = [np.full(len(part), 1.0 / vocab_size) for part in parts]
    part_grams = [gram_hashes(part, 0) for part in parts]
    train_grams = gram_hashes(train, 0)
    next_grams = gram_hashes(train, 1, train_grams)
    for k in range(1, order + 1):
        contexts, grams = train_grams, next_grams
        if len(grams) == 0:
            break
        longer = gram_hashes(train, k + 1, grams) if k < order else None
        counts = _order(train, grams, contexts, longer if longer is not None and len(longer) else None)
        for index, part in enumerate(parts):
            part_contexts = part_grams[index]
            part_grams[index] = gram_hashes(part, k, part_contexts)
            probs[index] = _step(counts, part_contexts, part_grams[index], probs[index], k)
        train_grams, next_grams = grams, longer if longer is not None else grams
    return [np.log(p) for p in probs]


def _step(counts: _Order, contexts: np.ndarray, grams: np.ndarray, lower: np.ndarray, k: int) -> np.ndarray:
    """p_k for every position of a part that has k-1 symbols before it (the first k-1 keep p_{k-1})."""
    out = lower.copy()
    ahead = lower[k - 1 :]
    sums = _lookup(counts.context_keys, counts.sums, contexts[: len(grams)])
    types = _lookup(counts.context_keys, counts.types, contexts[: len(grams)])
    count = _lookup(counts.keys, counts.counts, grams)
    seen = sums > 0
    d = counts.discount
    estimate = (np.maximum(count - d, 0) + d * types * ahead) / np.where(seen, sums, 1)
    out[k - 1 :] = np.where(seen, estimate, ahead)
    return out


@dataclass(frozen=True)
class NgramResult:
    order: int
    loss: float  # mean nats per symbol
    symbols: int

    @property
    def bpc(self) -> float:
        return self.loss / LN2

    def to_json(self) -> dict:
        return {"loss": self.loss, "bpc": self.bpc, "symbols": self.symbols}


def evaluate_ngram(
    train: np.ndarray, parts: dict[str, np.ndarray], order: int, vocab_size: int
) -> dict[str, NgramResult]:
    """The n-gram's mean loss on each named part (those of two symbols or more), as `evaluate` reports
    a model's: every symbol after the part's first predicted."""
    named = {name: ids for name, ids in parts.items() if len(ids) > 1}
    log_probs = kneser_ney_log_probs(train, list(named.values()), order, vocab_size)
    return {
        name: NgramResult(order, float(-lp[1:].mean()), len(lp) - 1) for name, lp in zip(named, log_probs, strict=True)
    }
