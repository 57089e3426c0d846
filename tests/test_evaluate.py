import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from charrnn.evaluate import evaluate
from charrnn.model import CharRNN, ModelConfig


def reference_loss(model, ids):
    """One single stream over the whole text: the definition that evaluate must match."""
    with torch.no_grad():
        x = torch.as_tensor(ids[:-1], dtype=torch.long)[None]
        y = torch.as_tensor(ids[1:], dtype=torch.long)
        logits, _ = model.eval()(x)
        return F.cross_entropy(logits[0], y).item()


def reference_streams_loss(model, ids, streams):
    """Each stream scored alone from a zero state; the last one runs on to the end of the text."""
    per_stream = (len(ids) - 1) // streams
    total = 0.0
    for i in range(streams):
        end = (i + 1) * per_stream if i < streams - 1 else len(ids) - 1
        total += reference_loss(model, ids[i * per_stream : end + 1]) * (end - i * per_stream)
    return total / (len(ids) - 1)


@pytest.mark.parametrize("n_chars, streams, seq_len", [(1000, 1, 1000), (1000, 8, 16), (997, 7, 10), (40, 64, 250)])
def test_evaluate_scores_every_character_once(n_chars, streams, seq_len):
    torch.manual_seed(0)
    ids = np.random.default_rng(0).integers(0, 9, n_chars).astype(np.uint8)
    model = CharRNN(ModelConfig(vocab_size=9, hidden=16, layers=1, embed_dim=4))
    result = evaluate(model, ids, streams, seq_len)
    assert result.chars == n_chars - 1
    used_streams = max(1, min(streams, (n_chars - 1) // max(seq_len // 4, 1)))  # evaluate's own cap
    assert result.loss == pytest.approx(reference_streams_loss(model, ids, used_streams), rel=1e-5)
    assert result.bpc == pytest.approx(result.loss / math.log(2))


def test_evaluate_leaves_training_mode_alone():
    model = CharRNN(ModelConfig(hidden=8, layers=2, dropout=0.5).for_vocab(4)).train()
    ids = np.arange(100, dtype=np.uint8) % 4
    assert evaluate(model, ids).loss == evaluate(model, ids).loss  # dropout off: deterministic
    assert model.training
