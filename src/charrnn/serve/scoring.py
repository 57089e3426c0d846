"""How likely a text is, character by character: what `echo` with `logprobs` returns (OpenAI's way of
scoring a prompt with `max_tokens: 0`)."""

from __future__ import annotations

import torch

from ..sample import Sampler


@torch.inference_mode()
def score_text(sampler: Sampler, text: str, top: int) -> dict:
    """Each character's log-probability given the ones before it (None for the first, which has no
    context), with the `top` likeliest characters at each place, in OpenAI's logprobs lists."""
    chars = sampler.vocab.chars
    tokens, token_logprobs, top_logprobs = list(text), [None] * min(len(text), 1), [None] * min(len(text), 1)
    if len(text) > 1:
        ids = torch.as_tensor(sampler.vocab.encode(text).astype("int64"), device=sampler.device)[None]
        logits, _ = sampler.model(ids[:, :-1], sampler.model.init_state(1, sampler.device))
        log_probs = torch.log_softmax(logits[0].float(), dim=-1).cpu()
        chosen = log_probs.gather(1, ids[0, 1:, None].cpu())[:, 0]
        token_logprobs += chosen.tolist()
        if top:
            values, indices = log_probs.topk(min(top, len(chars)), dim=-1)
            top_logprobs += [
                {chars[i]: v for i, v in zip(row_i, row_v, strict=True)}
                for row_i, row_v in zip(indices.tolist(), values.tolist(), strict=True)
            ]
        else:
            top_logprobs += [{} for _ in range(len(text) - 1)]
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top_logprobs}
