"""A prompt scored in OpenAI's logprobs lists: what `echo` with `logprobs` returns (OpenAI's way of
scoring a prompt with `max_tokens: 0`)."""

from __future__ import annotations

from ..generate.sampler import Sampler


def openai_logprobs(sampler: Sampler, text: str, top: int) -> dict:
    """Each character's log-probability given the ones before it (None for the first, which has no
    context), with the `top` likeliest characters at each place."""
    tokens, first = list(text), [None] * min(len(text), 1)
    if len(text) < 2:
        return {"tokens": tokens, "token_logprobs": first, "top_logprobs": first}
    scored = sampler.score(text, top)
    return {
        "tokens": tokens,
        "token_logprobs": first + scored.logprobs,
        "top_logprobs": first + (scored.top or [{} for _ in scored.logprobs]),
    }
