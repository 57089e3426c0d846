"""charrnn: character-level recurrent language models (LSTM, GRU, RNN) you can train and sample.

import charrnn
result = charrnn.train(charrnn.TrainConfig(texts=["anna.txt"], out="runs/anna"))
model = charrnn.load("runs/anna")
print(model.generate("Far", 300, temperature=0.8, top_k=5, seed=1))
ensemble = charrnn.load(["runs/anna", "runs/anna-seed2"])  # samples from the mean of their probabilities
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .config import TrainConfig
from .ensemble import Ensemble, load_ensemble
from .errors import CharRNNError
from .evaluate import EvalResult, evaluate, evaluate_dynamic
from .model import ModelConfig
from .rundir import load_model
from .sample import Sampler
from .sweep import SweepConfig, SweepResult, sweep
from .train import TrainResult, resume, train

__all__ = [
    "CharRNNError",
    "Ensemble",
    "EvalResult",
    "ModelConfig",
    "Sampler",
    "SweepConfig",
    "SweepResult",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "evaluate_dynamic",
    "load",
    "resume",
    "sweep",
    "train",
]
__version__ = "0.1.0"


def load(
    path: str | os.PathLike | Sequence[str | os.PathLike], checkpoint: str = "best", device: str = "cpu"
) -> Sampler:
    """A `Sampler` for a run directory (its best checkpoint unless told otherwise) or one checkpoint file;
    for a list of them, a `Sampler` for their `Ensemble` (the mean of their probabilities)."""
    if isinstance(path, str | os.PathLike):
        return Sampler(*load_model(path, checkpoint, device))
    return Sampler(*load_ensemble(list(path), checkpoint, device))
