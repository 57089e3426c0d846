from dataclasses import replace

import pytest
import torch

from charrnn.errors import CharRNNError
from charrnn.model import fastpaths
from charrnn.model.network import CharRNN, ModelConfig, count_parameters


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_carried_state_equals_one_long_pass(cell):
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=11, cell=cell, hidden=16, layers=2, embed_dim=8)).eval()
    ids = torch.randint(0, 11, (3, 20))
    whole, _ = model(ids)
    first, state = model(ids[:, :7])
    second, _ = model(ids[:, 7:], state)
    assert whole.shape == (3, 20, 11)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)


def test_state_shapes():
    model = CharRNN(ModelConfig(hidden=12, layers=3).for_vocab(5))
    assert [tuple(s.shape) for s in model.init_state(4)] == [(3, 4, 12)] * 2
    gru = CharRNN(ModelConfig(cell="gru", hidden=12, layers=3).for_vocab(5))
    assert [tuple(s.shape) for s in gru.init_state(4)] == [(3, 4, 12)]


def test_parameter_count_matches_the_formula():
    config = ModelConfig(vocab_size=83, hidden=512, layers=2, embed_dim=83)
    lstm = 4 * 512 * (83 + 512 + 2) + 4 * 512 * (512 + 512 + 2)
    assert count_parameters(CharRNN(config)) == 83 * 83 + lstm + 512 * 83 + 83


@pytest.mark.parametrize(
    "changes", [dict(cell="transformer"), dict(hidden=0), dict(layers=-1), dict(dropout=1.0), dict(dropout=-0.1)]
)
def test_bad_configs_are_refused(changes):
    with pytest.raises(CharRNNError):
        ModelConfig(vocab_size=5, **changes)


def test_model_needs_a_vocabulary_size():
    with pytest.raises(CharRNNError):
        CharRNN(ModelConfig())


def test_automatic_embedding_is_the_vocabulary_size_up_to_a_cap():
    assert ModelConfig().for_vocab(65).embed_dim == 65
    assert ModelConfig().for_vocab(5000).embed_dim == 128
    assert ModelConfig(embed_dim=16).for_vocab(65).embed_dim == 16


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_weight_drop_masks_the_recurrent_weights_in_training_only(cell):
    config = ModelConfig(vocab_size=7, cell=cell, hidden=6, layers=2, embed_dim=5, dropout=0.0, weight_drop=0.4)
    torch.manual_seed(0)
    model = CharRNN(config)
    plain = CharRNN(replace(config, weight_drop=0.0))
    plain.load_state_dict(model.state_dict())
    ids = torch.randint(0, 7, (3, 9))

    torch.manual_seed(5)
    dropped, _ = model.train()(ids)
    # The same draws, applied by hand: each layer's hidden-to-hidden matrix, and only it, through dropout.
    torch.manual_seed(5)
    with torch.no_grad():
        for name in ("weight_hh_l0", "weight_hh_l1"):
            weight = getattr(plain.rnn, name)
            weight.copy_(fastpaths.dropout(weight, 0.4, training=True))
    torch.testing.assert_close(dropped, plain(ids)[0])

    assert not torch.allclose(dropped, model.eval()(ids)[0])  # the mask did something
    torch.testing.assert_close(model.eval()(ids)[0], model.eval()(ids)[0])  # and evaluation has none
    dropped.sum().backward()
    assert model.rnn.weight_hh_l0.grad is not None and model.rnn.weight_hh_l0.grad.abs().sum() > 0


def test_weight_drop_must_be_a_probability():
    for bad in (1.0, -0.1):
        with pytest.raises(CharRNNError, match="--weight-drop"):
            ModelConfig(vocab_size=5, weight_drop=bad)


def test_a_config_saved_before_weight_drop_existed_still_loads():
    saved = ModelConfig(vocab_size=5, hidden=8).to_json()
    del saved["weight_drop"]
    assert ModelConfig.from_json(saved) == ModelConfig(vocab_size=5, hidden=8, weight_drop=0.0)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_layers_run_one_by_one_compute_what_the_fused_call_does(cell, monkeypatch):
    """With dropout a no-op, training's layer-by-layer path (taken on the CPU when there is dropout
    between layers) gives the fused call's outputs, final states and gradients."""
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=7, cell=cell, hidden=6, layers=3, embed_dim=5, dropout=0.3))
    ids, state = torch.randint(0, 7, (4, 9)), tuple(s.normal_() for s in model.init_state(4))
    fused_logits, fused_state = model.eval()(ids, state)
    fused_grads = torch.autograd.grad(fused_logits.square().sum(), list(model.parameters()))
    calls = []
    monkeypatch.setattr(fastpaths, "dropout", lambda x, p, training: calls.append(p) or x)
    logits, new_state = model.train()(ids, state)
    assert calls == [0.3, 0.3, 0.3]  # between the three layers, and before the output layer
    torch.testing.assert_close(logits, fused_logits)
    for got, want in zip(new_state, fused_state, strict=True):
        torch.testing.assert_close(got, want)
    grads = torch.autograd.grad(logits.square().sum(), list(model.parameters()))
    for got, want in zip(grads, fused_grads, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("p", [0.01, 0.1, 0.3, 0.5, 0.9])
def test_dropout_zeroes_a_share_p_and_scales_the_rest(p):
    torch.manual_seed(0)
    x = torch.rand(400, 500) + 0.5
    y = fastpaths.dropout(x, p, training=True)
    dropped = y == 0
    # 200,000 draws: sd of the share at most 0.0011. Each of the four 16-bit lanes that share one random
    # integer is checked on its own (50,000 draws, sd at most 0.0023), so a lane with a biased bit fails.
    for lane in range(4):
        assert abs(dropped[:, lane::4].float().mean().item() - p) < 0.012
    assert abs(dropped.float().mean().item() - p) < 0.005
    # the keep probability is a multiple of 1/65,536 and the scale is its exact inverse
    torch.testing.assert_close(y[~dropped], x[~dropped] / (1 - p), rtol=1 / ((1 - p) * 65536), atol=0)
    assert fastpaths.dropout(x, p, training=False) is x
    assert fastpaths.dropout(x, 0.0, training=True) is x


@pytest.mark.parametrize("shape", [(1,), (3, 5, 7), (2, 0, 4)])
def test_dropout_keeps_any_shape_and_follows_the_seed(shape):
    x = torch.ones(shape)
    torch.manual_seed(3)
    first = fastpaths.dropout(x, 0.5, training=True)
    torch.manual_seed(3)
    assert first.shape == x.shape and torch.equal(first, fastpaths.dropout(x, 0.5, training=True))
    assert set(first.unique().tolist()) <= {0.0, 2.0}


def test_dropout_between_layers_is_applied_in_training():
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=7, hidden=16, layers=2, embed_dim=5, dropout=0.5)
    model, ids = CharRNN(config).train(), torch.randint(0, 7, (4, 9))
    # the layers' final states do not see the output dropout: only dropout between layers changes them
    first, second = model(ids)[1][0][1], model(ids)[1][0][1]
    assert not torch.allclose(first, second)


@pytest.mark.skipif(not fastpaths.onednn.available(), reason="oneDNN's inner product is not callable here")
@pytest.mark.parametrize("training", [True, False])
def test_the_output_layer_through_onednn_equals_torchs(monkeypatch, training):
    """On the CPU the output layer goes through oneDNN when it is available: same logits, same gradients."""
    calls, through_onednn = [], fastpaths.onednn.TrainableLinear.apply
    monkeypatch.setattr(
        fastpaths.onednn.TrainableLinear, "apply", lambda *args: calls.append(1) or through_onednn(*args)
    )
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=11, hidden=24, layers=2, embed_dim=5, dropout=0.2)).train(training)
    ids = torch.randint(0, 11, (3, 13))

    def run():
        torch.manual_seed(1)
        logits = model(ids)[0]
        return logits, torch.autograd.grad(logits.square().sum(), list(model.parameters()))

    logits, grads = run()
    assert calls == [1]
    monkeypatch.setattr(fastpaths.onednn, "available", lambda: False)
    want_logits, want_grads = run()
    assert calls == [1]
    torch.testing.assert_close(logits, want_logits, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, want_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
