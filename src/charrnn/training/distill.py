"""Distillation (Hinton et al. 2015): the model learns from the text's next characters and from the mean
of some trained models' (the teachers') next-character distributions, both softened by a temperature.
The teachers read the same windows as the model, their states carried, reset and saved beside its own,
so that a resumed run still ends where an unbroken one does."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from ..data.vocab import Vocab
from ..errors import CharRNNError
from ..runs.rundir import load_model


class Teachers:
    """The teachers' models, on the trainer's device, frozen, in evaluation mode."""

    def __init__(self, models: Sequence[torch.nn.Module], temperature: float):
        self.models = [model.eval().requires_grad_(False) for model in models]
        self.temperature = temperature
        self.counts = [len(m.init_state(1, "cpu")) for m in self.models]  # state tensors per teacher

    @classmethod
    def load(cls, runs: Sequence[str], vocab: Vocab, device: torch.device, temperature: float) -> Teachers:
        """The runs' best checkpoints as teachers; a run with another vocabulary is refused."""
        models = []
        for run in runs:
            model, theirs, _ = load_model(run, "best", device)
            if theirs != vocab:
                raise CharRNNError(
                    f"teacher {run} has another vocabulary ({len(theirs)} symbols; this text has {len(vocab)}): "
                    "a teacher must be trained on the same characters"
                )
            models.append(model)
        return cls(models, temperature)

    def init_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        return tuple(s for model in self.models for s in model.init_state(batch))

    @torch.no_grad()
    def soft_targets(self, inputs: torch.Tensor, states: tuple) -> tuple[torch.Tensor, tuple]:
        """The teachers' mean next-character distribution at the temperature (float32), and their states after."""
        mean, after, start = 0.0, [], 0
        for model, count in zip(self.models, self.counts, strict=True):
            logits, state = model(inputs, states[start : start + count])
            mean = mean + F.softmax(logits.float() / self.temperature, dim=-1)
            after.extend(state)
            start += count
        return mean / len(self.models), tuple(after)


def distill_loss(logits: torch.Tensor, targets: torch.Tensor, soft: torch.Tensor, mix: float, temperature: float):
    """(1 - mix) · the cross-entropy with the text + mix · T² · the KL divergence from the teachers' softened
    distribution to the model's (T² keeps the soft part's gradients the size of the hard part's as T
    changes; KL rather than cross-entropy, the same gradient, so that the reported loss is 0 where the
    model matches its teachers, not their entropy)."""
    vocab = logits.shape[-1]
    hard = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
    log_student = F.log_softmax(logits.reshape(-1, vocab).float() / temperature, dim=-1)
    soft = soft.reshape(-1, vocab)
    soft_part = (torch.special.xlogy(soft, soft) - soft * log_student).sum(-1).mean()
    return (1 - mix) * hard + mix * temperature**2 * soft_part
