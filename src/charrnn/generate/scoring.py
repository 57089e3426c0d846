"""How likely a text is under a model, character by character: `Sampler.score` and `charrnn score`.

Each character after the first is scored given all those before it, reading the text as one stream
(in windows, with the state carried), so the mean agrees with `evaluate` on the same text.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.vocab import Vocab
from ..errors import CharRNNError
from ..model.ensemble import Ensemble
from ..model.network import CharRNN
from ..runs.metrics import LN2, WindowProgress

_WINDOW = 4096  # characters per forward pass: bounds the logits held at once, whatever the text's length


@dataclass(frozen=True)
class TextScore:
    text: str
    logprobs: list[float]  # nats, of text[1:], each given the characters before it
    top: list[dict[str, float]]  # for each scored character, the likeliest characters there (empty: not asked)

    @property
    def chars(self) -> int:
        return len(self.logprobs)

    @property
    def total(self) -> float:
        """The text's log-probability in nats (its first character given)."""
        return sum(self.logprobs)

    @property
    def loss(self) -> float:
        """Mean nats per scored character: what `eval` reports for the same text."""
        return -self.total / self.chars

    @property
    def bpc(self) -> float:
        return self.loss / LN2

    def to_json(self, per_char: bool = False) -> dict:
        report = {"chars": self.chars, "logprob": self.total, "loss": self.loss, "bpc": self.bpc}
        if per_char:
            report["per_char"] = [
                {"char": c, "logprob": lp, **({"top": t} if t else {})}
                for c, lp, t in zip(self.text[1:], self.logprobs, self.top or [{}] * self.chars, strict=True)
            ]
        return report


@torch.inference_mode()
def score_text(
    model: CharRNN | Ensemble, vocab: Vocab, text: str, top: int = 0, progress: WindowProgress | None = None
) -> TextScore:
    """`text` scored by `model` (dropout off); `top` alternatives per character (0: none); `progress(windows,
    count)` may wrap the windows, e.g. in a bar."""
    if len(text) < 2:
        raise CharRNNError("text too short to score: need at least two characters")
    ids = torch.as_tensor(vocab.encode(text).astype("int64"), device=model.device)[None]
    was_training = model.training
    model.eval()
    logprobs, tops = [], []
    try:
        state = model.init_state(1, model.device)
        starts = range(0, ids.shape[1] - 1, _WINDOW)
        for start in progress(starts, len(starts)) if progress else starts:
            inputs, targets = ids[:, start : start + _WINDOW], ids[0, start + 1 : start + 1 + _WINDOW]
            inputs = inputs[:, : len(targets)]
            logits, state = model(inputs, state)
            log_probs = torch.log_softmax(logits[0].float(), dim=-1).cpu()
            logprobs += log_probs.gather(1, targets[:, None].cpu())[:, 0].tolist()
            if top:
                tops += _top(log_probs, min(top, len(vocab.chars)), vocab.chars)
    finally:
        model.train(was_training)
    return TextScore(text, logprobs, tops)


def _top(log_probs: torch.Tensor, top: int, chars: str) -> list[dict[str, float]]:
    values, indices = log_probs.topk(top, dim=-1)
    return [
        {chars[i]: v for i, v in zip(row_i, row_v, strict=True)}
        for row_i, row_v in zip(indices.tolist(), values.tolist(), strict=True)
    ]
