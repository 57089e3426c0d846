"""What one real training step costs on this machine: the sweep's plan and the budget's probe time it.

A scratch trainer writes nothing (no run directory, no report); its first steps pay for oneDNN's
primitives and the allocator's first requests, so they are taken before the clock starts.
"""

from __future__ import annotations

import io
import statistics
import time

from ..data.dataset import Data
from .build import build_trainer
from .config import TrainConfig
from .trainer import Trainer

WARM_UP_STEPS = 3


def scratch_trainer(config: TrainConfig, data: Data) -> Trainer:
    """A trainer for `config` on `data` that only steps: nothing is saved or printed."""
    trainer = build_trainer(config, data, stream=io.StringIO())
    for _ in range(WARM_UP_STEPS):
        trainer.train_step(config.lr)
    return trainer


def timed_steps(trainer: Trainer, steps: int) -> list[float]:
    """Seconds of each of `steps` training steps."""
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.train_step(trainer.config.lr)
        times.append(time.perf_counter() - start)
    return times


def median_step(trainer: Trainer, steps: int) -> float:
    return statistics.median(timed_steps(trainer, steps))
