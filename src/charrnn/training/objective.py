"""What a training step minimises: the cross-entropy with the text's next characters, or its mix with
the teachers' distribution (distill.py), plus AR and TAR (penalties.py) where asked. It also owns the
state a step carries: the model's own tensors first, then the teachers'."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch.nn import functional as F

from ..data.batches import Batch
from ..model.network import CharRNN
from .config import TrainConfig
from .distill import Teachers, distill_loss
from .penalties import activation_penalty


@dataclass(frozen=True)
class Objective:
    config: TrainConfig
    model: CharRNN
    teachers: Teachers | None

    @cached_property
    def own_states(self) -> int:
        """How many of the carried tensors are the model's (the rest are the teachers'); counted once, not
        per step."""
        return len(self.model.init_state(1, "cpu"))

    def initial_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        """The zero state carried over `batch` streams: the model's, then the teachers'."""
        return self.model.init_state(batch) + (self.teachers.init_state(batch) if self.teachers else ())

    def loss(self, forward, batch: Batch, carried: tuple) -> tuple[torch.Tensor, tuple]:
        """The batch's loss through `forward` (the model, or DDP around it) from the `carried` state, and
        the state after it."""
        config, own = self.config, self.own_states
        state, teacher_state = carried[:own], carried[own:]
        penalised = config.ar > 0 or config.tar > 0
        logits, after, *outputs = forward(batch.inputs, state, outputs=penalised)
        if self.teachers:
            soft, teacher_state = self.teachers.soft_targets(batch.inputs, teacher_state)
            loss = distill_loss(logits, batch.targets, soft, config.distill_mix, config.distill_temperature)
        else:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1))
        if outputs:
            loss = loss + activation_penalty(*outputs[0], config.ar, config.tar)
        return loss, after + teacher_state
