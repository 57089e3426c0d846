"""charrnn: character-level recurrent language models (LSTM, GRU, RNN) you can train and sample.

import charrnn
result = charrnn.train(charrnn.TrainConfig(texts=["anna.txt"], out="runs/anna"))
model = charrnn.load("runs/anna")
print(model.generate("Far", 300, temperature=0.8, top_k=5, seed=1))
"""

from __future__ import annotations

import os

from .checkpoint import load_model
from .config import TrainConfig
from .errors import CharRNNError
from .evaluate import EvalResult, evaluate, evaluate_dynamic
from .model import ModelConfig
from .sample import Sampler
from .train import TrainResult, resume, train

__all__ = [
    "CharRNNError",
    "EvalResult",
    "ModelConfig",
    "Sampler",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "evaluate_dynamic",
    "load",
    "resume",
    "train",
]
__version__ = "0.1.0"


def load(path: str | os.PathLike, checkpoint: str = "best", device: str = "cpu") -> Sampler:
    """A `Sampler` for a run directory (its best checkpoint unless told otherwise) or one checkpoint file."""
    model, vocab, info = load_model(path, checkpoint, device)
    return Sampler(model, vocab, info)
