"""The ensemble that benchmarks/bench_ensemble.py scores: averaged probabilities through `charrnn.evaluate`."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import charrnn
from charrnn.model import CharRNN

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_ensemble import Ensemble


def tiny_model(seed: int, hidden: int = 24) -> CharRNN:
    torch.manual_seed(seed)
    return CharRNN(charrnn.ModelConfig(vocab_size=11, hidden=hidden, layers=2, embed_dim=8)).eval()


@pytest.fixture
def ids() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 11, size=3_000).astype(np.uint8)


def test_one_member_scores_as_the_model_alone(ids):
    model = tiny_model(1)
    assert charrnn.evaluate(Ensemble([model]), ids).loss == pytest.approx(charrnn.evaluate(model, ids).loss, abs=1e-5)


def test_ensemble_is_the_mean_of_its_members_probabilities(ids):
    # Members of different widths check that each keeps its own state from window to window.
    members = [tiny_model(1), tiny_model(2, hidden=40)]
    text = torch.from_numpy(ids.astype(np.int64))[None]
    with torch.inference_mode():
        probs = [torch.softmax(member(text[:, :-1])[0], dim=-1) for member in members]
        expected = -torch.log(sum(probs) / 2).gather(-1, text[:, 1:, None]).mean().item()
    got = charrnn.evaluate(Ensemble(members), ids, streams=1, seq_len=100).loss
    assert got == pytest.approx(expected, abs=1e-5)
    # Averaging probabilities scores below the members' mean loss (Jensen).
    assert got < sum(charrnn.evaluate(member, ids, streams=1).loss for member in members) / 2
