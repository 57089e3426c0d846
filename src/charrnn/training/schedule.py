"""The learning rate as a pure function of where the run is: linear warm-up, then cosine decay to
`min_lr_ratio` of the peak (or constant), over whichever stop condition comes first."""

from __future__ import annotations

import math

from .config import TrainConfig


def progress(config: TrainConfig, step: int, elapsed: float, steps_per_epoch: int) -> float:
    """How far through the run `step` steps done and `elapsed` seconds are, 0..1, by the nearest stop."""
    parts = []
    if config.max_steps:
        parts.append(step / config.max_steps)
    if config.epochs:
        parts.append(step / (config.epochs * steps_per_epoch))
    if config.time_budget:
        parts.append(elapsed / config.time_budget)
    return min(max(parts), 1.0)


def learning_rate(config: TrainConfig, step: int, elapsed: float, steps_per_epoch: int) -> float:
    """The rate for the step after `step` steps done, `elapsed` seconds into the run."""
    warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    if config.lr_schedule == "constant":
        return config.lr * warmup
    cosine = 0.5 * (1 + math.cos(math.pi * progress(config, step, elapsed, steps_per_epoch)))
    return config.lr * warmup * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)
