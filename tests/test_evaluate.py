import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from charrnn.errors import CharRNNError
from charrnn.generate.evaluation import dynamic_window_losses, evaluate, evaluate_dynamic
from charrnn.model.network import CharRNN, ModelConfig


def reference_loss(model, ids):
    """One single stream over the whole text: the definition that evaluate must match."""
    with torch.no_grad():
        x = torch.as_tensor(ids[:-1], dtype=torch.long)[None]
        y = torch.as_tensor(ids[1:], dtype=torch.long)
        logits, _ = model.eval()(x)
        return F.cross_entropy(logits[0], y).item()


def reference_streams_loss(model, ids, streams, lead_in):
    """Each stream scored alone, after reading (unscored) the `lead_in` characters before it from a zero
    state; the last one runs on to the end of the text."""
    per_stream = (len(ids) - 1) // streams
    width = min(lead_in, per_stream)
    total = 0.0
    for i in range(streams):
        start, end = i * per_stream, (i + 1) * per_stream if i < streams - 1 else len(ids) - 1
        first = max(start - width, 0)
        with torch.no_grad():
            logits, _ = model.eval()(torch.as_tensor(ids[first:end], dtype=torch.long)[None])
            losses = F.cross_entropy(
                logits[0], torch.as_tensor(ids[first + 1 : end + 1], dtype=torch.long), reduction="none"
            )
        total += losses[start - first :].sum().item()
    return total / (len(ids) - 1)


@pytest.mark.parametrize(
    "n_chars, streams, seq_len, lead_in",
    [(1000, 1, 1000, 250), (1000, 8, 16, 0), (1000, 8, 16, 30), (997, 7, 10, 500), (40, 64, 250, 250)],
)
def test_evaluate_scores_every_character_once(n_chars, streams, seq_len, lead_in):
    torch.manual_seed(0)
    ids = np.random.default_rng(0).integers(0, 9, n_chars).astype(np.uint8)
    model = CharRNN(ModelConfig(vocab_size=9, hidden=16, layers=2, embed_dim=4))
    result = evaluate(model, ids, streams, seq_len, lead_in)
    assert result.chars == n_chars - 1
    used_streams = max(1, min(streams, (n_chars - 1) // max(seq_len // 4, 1)))  # evaluate's own cap
    assert result.loss == pytest.approx(reference_streams_loss(model, ids, used_streams, lead_in), rel=1e-5)
    assert result.bpc == pytest.approx(result.loss / math.log(2))


def test_evaluate_leaves_training_mode_alone():
    model = CharRNN(ModelConfig(hidden=8, layers=2, dropout=0.5).for_vocab(4)).train()
    ids = np.arange(100, dtype=np.uint8) % 4
    assert evaluate(model, ids).loss == evaluate(model, ids).loss  # dropout off: deterministic
    assert model.training


def small_model(vocab: int = 9, seed: int = 0) -> CharRNN:
    torch.manual_seed(seed)
    return CharRNN(ModelConfig(vocab_size=vocab, hidden=24, layers=2, embed_dim=6, dropout=0.3, weight_drop=0.3)).eval()


@pytest.mark.parametrize("seq_len", [1, 7, 50, 999])
def test_dynamic_at_lr_0_is_one_unbroken_stream(seq_len):
    ids = np.random.default_rng(1).integers(0, 9, 400).astype(np.uint8)
    model = small_model()
    result = evaluate_dynamic(model, ids, lr=0.0, seq_len=seq_len)
    assert result.chars == 399 and result.dynamic_lr == 0.0
    assert result.loss == pytest.approx(reference_loss(model, ids), rel=1e-5)


def test_dynamic_scores_each_window_before_learning_from_it():
    ids = np.random.default_rng(2).integers(0, 9, 301).astype(np.uint8)
    static = list(dynamic_window_losses(small_model(), ids, 0.0, 30))
    learning = list(dynamic_window_losses(small_model(), ids, 0.5, 30))
    assert len(learning) == 10
    assert learning[0] == pytest.approx(static[0], rel=1e-6)  # nothing learned yet
    assert learning[1] != pytest.approx(static[1], rel=1e-3)  # learned from window 0
    # Text after a window can never change that window's score.
    changed = ids.copy()
    changed[151:] = (changed[151:] + 1) % 9  # window 4's last target is ids[150]
    with_change = list(dynamic_window_losses(small_model(), changed, 0.5, 30))
    assert with_change[:5] == pytest.approx(learning[:5], rel=1e-6)
    assert with_change[5:] != pytest.approx(learning[5:], rel=1e-3)


def test_dynamic_evaluation_learns_a_repeated_text():
    motif = np.random.default_rng(3).integers(0, 9, 23).astype(np.uint8)
    ids = np.tile(motif, 60)
    model = small_model()
    static = evaluate_dynamic(model, ids, lr=0.0).loss
    adapted = evaluate_dynamic(model, ids, lr=2.0, seq_len=10).loss
    assert adapted < 0.6 * static


def test_dynamic_evaluation_leaves_the_model_alone():
    model = small_model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    evaluate_dynamic(model, np.arange(200, dtype=np.uint8) % 9, lr=1.0)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    "lr, message", [(-0.1, "must not be negative"), (math.nan, "must not be negative"), (math.inf, "diverged")]
)
def test_dynamic_evaluation_refuses_bad_learning_rates(lr, message):
    with pytest.raises(CharRNNError, match=message):
        evaluate_dynamic(small_model(), np.arange(200, dtype=np.uint8) % 9, lr=lr)


def test_dynamic_evaluation_refuses_a_text_of_one_character():
    with pytest.raises(CharRNNError, match="too short"):
        evaluate_dynamic(small_model(), np.zeros(1, dtype=np.uint8))


def test_evaluations_report_each_window_to_a_progress_wrapper():
    model = CharRNN(ModelConfig(hidden=8, layers=1).for_vocab(4))
    ids = np.arange(1_001, dtype=np.uint8) % 4
    seen = []

    def progress(windows, count):
        seen.append([count, 0])
        for window in windows:
            seen[-1][1] += 1
            yield window

    plain = evaluate(model, ids, streams=4, seq_len=50, progress=progress)
    assert plain.loss == evaluate(model, ids, streams=4, seq_len=50).loss
    dynamic = evaluate_dynamic(model, ids, lr=0.0, seq_len=100, progress=progress)
    assert dynamic.loss == evaluate_dynamic(model, ids, lr=0.0, seq_len=100).loss
    assert seen == [[5, 5], [10, 10]]  # 250 characters a stream in windows of 50; 1,000 predictions in 100s


def test_scoring_reports_each_window_to_a_progress_wrapper():
    from charrnn.data.vocab import Vocab
    from charrnn.generate.scoring import score_text

    vocab = Vocab.from_text("abcd")
    model = CharRNN(ModelConfig(hidden=8, layers=1).for_vocab(4))
    text = "abcd" * 2_500  # 9,999 predictions: three windows of 4,096
    seen = []

    def progress(windows, count):
        seen.append(count)
        return windows

    assert score_text(model, vocab, text, progress=progress).logprobs == score_text(model, vocab, text).logprobs
    assert seen == [3]
