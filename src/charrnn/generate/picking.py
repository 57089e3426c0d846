"""Choosing the next character from logits: `SamplingOptions` (temperature, top-k, top-p, greedy) and the
pickers for a torch batch, a numpy row and numpy rows, which draw the same characters for the same
uniforms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..settings import check, non_negative, option


@dataclass(frozen=True)
class SamplingOptions:
    temperature: float = option(1.0, "below 1: safer, above 1: wilder; 0: greedy", low=0, high=100)
    top_k: int = non_negative(0, "sample among the k likeliest characters (0: all)")
    top_p: float = option(1.0, "sample among the likeliest characters holding p of the mass (1: all)", low=0,
                          low_open=True, high=1)  # fmt: skip
    greedy: bool = option(False, "always take the likeliest character")

    def __post_init__(self):
        check(self)

    @property
    def is_greedy(self) -> bool:
        return self.greedy or self.temperature == 0


def pick_next(logits: torch.Tensor, options: SamplingOptions, generator: torch.Generator) -> torch.Tensor:
    """Next ids (batch,) from logits (batch, vocab) under temperature, top-k and top-p."""
    if options.is_greedy:
        return logits.argmax(dim=-1)
    indices = None
    if 0 < options.top_k < logits.shape[-1]:
        logits, indices = torch.topk(logits, options.top_k, dim=-1)  # the k likeliest, in order
    if options.temperature != 1.0:
        logits = logits / options.temperature
    if options.top_p < 1.0:
        if indices is None:
            logits, indices = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(logits, dim=-1)
        # Drop a character once the ones before it already hold top_p of the mass. The first always stays,
        # even for a top_p that float32 rounds to 0.
        drop = torch.cumsum(probs, dim=-1) - probs >= options.top_p
        drop[..., 0] = False
        logits = logits.masked_fill(drop, float("-inf"))
    choice = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)
    return (choice if indices is None else indices.gather(-1, choice)).squeeze(-1)


def pick_next_row(logits: np.ndarray, options: SamplingOptions, rng: np.random.Generator) -> int:
    """`pick_next` for a single row of logits (vocab,) in numpy: the batch-1 loop on the CPU, where
    each of torch's calls would cost more than the whole choice does here."""
    if options.is_greedy:
        return int(logits.argmax())
    ranked = np.argsort(-logits, kind="stable")  # likeliest first
    if 0 < options.top_k < len(ranked):
        ranked = ranked[: options.top_k]
    scaled = logits[ranked] * (1.0 / options.temperature)
    weights = np.exp(scaled - scaled[0])  # unnormalised softmax; the first is the largest
    if options.top_p < 1.0:
        before = np.cumsum(weights) - weights  # mass of the likelier ones; the first always stays
        keep = before < options.top_p * weights.sum()
        keep[0] = True  # even for a top_p that float32 rounds to 0
        weights = weights[keep]
    cumulative = np.cumsum(weights)
    chosen = np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")
    return int(ranked[min(chosen, len(cumulative) - 1)])


def pick_next_rows(
    logits: np.ndarray, temperature: np.ndarray, top_k: np.ndarray, top_p: np.ndarray, draws: np.ndarray
) -> np.ndarray:
    """`pick_next_row` for a batch whose rows each have their own options and their own uniform draw
    (`draws`, one per row from that row's generator; NaN for a greedy row, which draws nothing): row i
    gets what `pick_next_row` gives for row i with the same draw, in one numpy pass, in the same
    float32 arithmetic (numpy's scalar rules make `pick_next_row` compute in the logits' dtype)."""
    batch, vocab = logits.shape
    dtype = logits.dtype
    greedy = np.isnan(draws)
    rows = np.arange(batch)[:, None]
    ranked = rank_rows(logits)
    scale = (1.0 / np.where(greedy, 1.0, temperature)).astype(dtype)
    scaled = logits[rows, ranked] * scale[:, None]
    weights = np.exp(scaled - scaled[:, :1])
    cut = np.where((top_k > 0) & (top_k < vocab), top_k, vocab)
    kept = None
    if (cut < vocab).any():
        kept = np.arange(vocab)[None, :] < cut[:, None]
        weights[~kept] = 0
    limited = top_p < 1.0
    if limited.any():
        kept = np.ones((batch, vocab), dtype=bool) if kept is None else kept
        before = np.cumsum(weights, axis=1) - weights
        total = weights.sum(axis=1) * top_p.astype(dtype)
        kept &= ~((before >= total[:, None]) & limited[:, None])
        kept[:, 0] = True  # the likeliest always stays, as in pick_next_row
        weights[~kept] = 0
    cumulative = np.cumsum(weights, axis=1)
    targets = np.where(greedy, 0.0, draws).astype(dtype) * cumulative[:, -1]
    last = cut - 1 if kept is None else kept.sum(axis=1) - 1
    chosen = np.minimum((cumulative <= targets[:, None]).sum(axis=1), last)
    return ranked[rows[:, 0], np.where(greedy, 0, chosen)]  # a greedy row takes the likeliest


def rank_rows(logits: np.ndarray) -> np.ndarray:
    """`np.argsort(-logits, axis=1, kind="stable")` for float32 rows (likeliest first, ties in column
    order), several times faster: each logit's bits and its column packed into one int64 key, which
    numpy's vectorised sort of integers orders by value, then column."""
    if logits.dtype != np.float32:
        return np.argsort(-logits, axis=1, kind="stable")
    bits = (logits + np.float32(0)).view(np.int32).astype(np.int64)  # + 0: -0.0 becomes 0.0, its equal
    ascending = np.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # negative floats' bits count the wrong way
    shift = max(1, (logits.shape[1] - 1).bit_length())
    keys = (-ascending << shift) | np.arange(logits.shape[1])
    keys.sort(axis=1)
    return keys & ((1 << shift) - 1)
