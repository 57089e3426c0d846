"""charrnn: character-level recurrent language models (LSTM, GRU, RNN) you can train and sample.

import charrnn
result = charrnn.train(charrnn.TrainConfig(texts=["anna.txt"], out="runs/anna"))
model = charrnn.load("runs/anna")
print(model.generate("Far", 300, temperature=0.8, top_k=5, seed=1))
ensemble = charrnn.load(["runs/anna", "runs/anna-seed2"])  # samples from the mean of their probabilities

Names are imported on first use, so that what needs no torch (`charrnn.prepare`) does not load it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

_HOMES = {
    "CharRNNError": "errors",
    "Ensemble": "model.ensemble",
    "EvalResult": "generate.evaluation",
    "ModelConfig": "model.network",
    "Sampler": "generate.sampler",
    "SweepConfig": "training.sweeps",
    "SweepResult": "training.sweeps",
    "TrainConfig": "training.config",
    "TrainResult": "training.trainer",
    "choose_config": "training.budget",
    "evaluate": "generate.evaluation",
    "evaluate_dynamic": "generate.evaluation",
    "prepare": "data.prepared",
    "resume": "training.runner",
    "sweep": "training.sweeps",
    "train": "training.runner",
    "trace": "inspect.trace",
}
__all__ = sorted([*_HOMES, "load"])
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .generate.sampler import Sampler


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'charrnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])


def load(
    path: str | os.PathLike | Sequence[str | os.PathLike], checkpoint: str = "best", device: str = "cpu"
) -> Sampler:
    """A `Sampler` for a run directory (its best checkpoint unless told otherwise) or one checkpoint file;
    for a list of several, a `Sampler` for their `Ensemble` (the mean of their probabilities)."""
    from .generate.sampler import Sampler
    from .model.ensemble import load_models

    one = isinstance(path, str | os.PathLike)
    model, vocab, infos = load_models([path] if one else list(path), checkpoint, device)
    return Sampler(model, vocab, infos[0] if one else infos)
