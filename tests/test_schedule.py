"""The learning-rate schedule on its own: a pure function of steps done, seconds spent and the config."""

import math

import pytest

from charrnn.training.config import TrainConfig
from charrnn.training.schedule import learning_rate, progress

PER_EPOCH = 50


def config(**changes) -> TrainConfig:
    return TrainConfig(texts=("x",), **{"lr": 1e-2, "warmup_steps": 10, "min_lr_ratio": 0.1, **changes})


def test_warm_up_rises_linearly_to_the_peak():
    c = config(max_steps=1000, lr_schedule="constant")
    assert [learning_rate(c, step, 0.0, PER_EPOCH) for step in (0, 4, 9, 50)] == pytest.approx([1e-3, 5e-3, 1e-2, 1e-2])


def test_no_warm_up_starts_at_the_peak():
    assert learning_rate(config(max_steps=100, warmup_steps=0, lr_schedule="constant"), 0, 0.0, PER_EPOCH) == 1e-2


def test_cosine_falls_from_the_peak_to_the_floor():
    c = config(max_steps=1000)
    assert learning_rate(c, 10, 0.0, PER_EPOCH) == pytest.approx(
        1e-2 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.01)))
    )
    assert learning_rate(c, 500, 0.0, PER_EPOCH) == pytest.approx(1e-2 * (0.1 + 0.9 * 0.5))
    assert learning_rate(c, 1000, 0.0, PER_EPOCH) == pytest.approx(1e-3)
    assert learning_rate(c, 5000, 0.0, PER_EPOCH) == pytest.approx(1e-3)  # past the end: the floor, not below


@pytest.mark.parametrize(
    "stop, step, elapsed, want",
    [
        ({"max_steps": 200}, 50, 0.0, 0.25),
        ({"epochs": 4}, 50, 0.0, 0.25),  # 4 epochs of 50 steps
        ({"time_budget": 60.0}, 0, 15.0, 0.25),
        ({"max_steps": 200, "time_budget": 60.0}, 50, 30.0, 0.5),  # the nearest stop sets the progress
        ({"max_steps": 100, "epochs": 10}, 50, 0.0, 0.5),
        ({"time_budget": 60.0}, 0, 90.0, 1.0),
    ],
)
def test_each_stop_condition_sets_the_progress(stop, step, elapsed, want):
    assert progress(config(**stop), step, elapsed, PER_EPOCH) == pytest.approx(want)


def test_constant_ignores_the_progress():
    c = config(max_steps=100, lr_schedule="constant")
    assert learning_rate(c, 99, 0.0, PER_EPOCH) == learning_rate(c, 20, 0.0, PER_EPOCH) == 1e-2
