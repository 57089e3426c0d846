"""AWD-LSTM's regularisers: locked (variational) dropout, embedding dropout, AR and TAR. Each mask is
drawn where it is named (per sequence, per character row), none acts in evaluation, the fused layers
stay where they can, and a resumed run ends where an unbroken one does."""

import os

import pytest
import torch

import charrnn
from charrnn.model.network import CharRNN, ModelConfig
from charrnn.runs.rundir import resolve_checkpoint
from charrnn.training.penalties import activation_penalty

from conftest import tiny_config

VOCAB = 20


def model_with(**settings) -> CharRNN:
    torch.manual_seed(0)
    config = ModelConfig(hidden=16, layers=2, embed_dim=8, **settings).for_vocab(VOCAB)
    return CharRNN(config).train()


def dropped_tensors(model: CharRNN, ids: torch.Tensor) -> list[torch.Tensor]:
    """What each dropout of one training forward pass gave: the input's, between layers', the output's."""
    seen, drop = [], model._drop
    model._drop = lambda x, p: seen.append(drop(x, p)) or seen[-1]
    model(ids)
    del model._drop
    return seen


def test_locked_dropout_drops_the_same_units_at_every_step_of_a_sequence():
    model = model_with(dropout=0.5, input_dropout=0.4, locked_dropout=True)
    ids = torch.randint(0, VOCAB, (6, 40))
    drops = dropped_tensors(model, ids)
    assert [d.shape[-1] for d in drops] == [8, 16, 16]  # the input, between the two layers, the output
    for dropped in drops:
        zeros = dropped == 0
        assert zeros.any() and (zeros == zeros[:, :1]).all()  # one pattern per sequence, for all its steps
        assert not (zeros[:, 0] == zeros[:1, 0]).all()  # and each sequence its own
    plain = dropped_tensors(model_with(dropout=0.5), ids)[-1] == 0
    assert not (plain == plain[:, :1]).all()  # without it, a mask per element


def test_embedding_dropout_drops_whole_characters():
    model = model_with(embed_dropout=0.5)
    ids = torch.arange(VOCAB).repeat(3, 2)  # every character, several times in each row
    rows = model._embedded(ids)
    dropped = (rows == 0).all(-1)
    assert dropped.any() and not dropped.all()
    for char in range(VOCAB):
        assert dropped[ids == char].unique().numel() == 1  # a character is dropped everywhere or nowhere
    kept = ~dropped
    assert torch.allclose(rows[kept], model.embed(ids)[kept] * 2)  # scaled by 1 / (1 - p)


def test_no_regulariser_acts_in_evaluation():
    settings = dict(dropout=0.5, locked_dropout=True, input_dropout=0.4, embed_dropout=0.3, weight_drop=0.2)
    model, plain = model_with(**settings).eval(), model_with().eval()
    plain.load_state_dict(model.state_dict())
    ids = torch.randint(0, VOCAB, (3, 25))
    assert torch.equal(model(ids)[0], plain(ids)[0])
    assert torch.equal(model(ids)[0], model(ids)[0])


def test_off_they_change_nothing_in_training():
    ids = torch.randint(0, VOCAB, (3, 25))
    torch.manual_seed(5)
    before = model_with(dropout=0.3)(ids)[0]
    torch.manual_seed(5)
    after = model_with(dropout=0.3, locked_dropout=False, input_dropout=0.0, embed_dropout=0.0)(ids)[0]
    assert torch.equal(before, after)


def test_ar_and_tar_against_a_hand_computation():
    torch.manual_seed(1)
    raw, dropped = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    ar_sum = sum(float(dropped[b, t, u]) ** 2 for b in range(2) for t in range(5) for u in range(3))
    tar_sum = sum(float(raw[b, t, u] - raw[b, t - 1, u]) ** 2 for b in range(2) for t in range(1, 5) for u in range(3))
    want = 2.0 * ar_sum / 30 + 3.0 * tar_sum / 24
    assert activation_penalty(raw, dropped, 2.0, 3.0).item() == pytest.approx(want, rel=1e-6)
    assert activation_penalty(raw, dropped, 0.0, 0.0).item() == 0


def test_the_model_hands_out_the_outputs_ar_and_tar_read():
    model = model_with(dropout=0.5)
    ids = torch.randint(0, VOCAB, (2, 10))
    torch.manual_seed(3)
    logits, _, (raw, dropped) = model(ids, outputs=True)
    torch.manual_seed(3)
    plain_logits, _ = model(ids)
    assert torch.equal(logits, plain_logits) and raw.shape == dropped.shape == (2, 10, 16)
    assert torch.allclose(model.head(dropped), logits, atol=1e-6)


def model_tensors(run) -> dict:
    """The checkpoint's weights, optimiser and carried state (the generators' states differ by process)."""
    return {k: v for k, v in resolve_checkpoint(run, "latest")[1].items() if not k.startswith("rng.")}


def test_training_with_all_of_them_resumes_bit_for_bit(anna_50k, tmp_path):
    settings = dict(dropout=0.3, locked_dropout=True, input_dropout=0.2, embed_dropout=0.1, weight_drop=0.2)
    flags = dict(model=settings, ar=2.0, tar=1.0, save_every=10, lr_schedule="constant")  # the same lr however long
    whole = tmp_path / "whole"
    charrnn.train(tiny_config(anna_50k, whole, max_steps=20, **flags), stream=open(os.devnull, "w"))
    half = tmp_path / "half"
    charrnn.train(tiny_config(anna_50k, half, max_steps=10, **flags), stream=open(os.devnull, "w"))
    charrnn.resume(half, {"max_steps": 20}, stream=open(os.devnull, "w"))
    wa, wb = model_tensors(whole), model_tensors(half)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    plain = tmp_path / "plain"
    charrnn.train(
        tiny_config(anna_50k, plain, max_steps=20, save_every=10, lr_schedule="constant"), stream=open(os.devnull, "w")
    )
    wp = model_tensors(plain)
    assert not all(torch.equal(wa[k], wp[k]) for k in wa if k in wp)  # they changed the training
