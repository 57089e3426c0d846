import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from charrnn.data.vocab import Vocab
from charrnn.errors import CharRNNError
from charrnn.generate import step as step_module
from charrnn.generate.picking import SamplingOptions, pick_next, pick_next_row, pick_next_rows, rank_rows
from charrnn.generate.sampler import Sampler
from charrnn.generate.step import RecurrentStep
from charrnn.model import onednn
from charrnn.model.network import CharRNN, ModelConfig

VOCAB = Vocab.from_text("abcdefghij \n")


def sampler(cell="lstm", seed=0, layers=2, hidden=24) -> Sampler:
    torch.manual_seed(seed)
    model = CharRNN(ModelConfig(vocab_size=len(VOCAB), cell=cell, hidden=hidden, layers=layers, embed_dim=8))
    return Sampler(model, VOCAB)


BATCH_OPS = {"numpy": (1, step_module._NumpyOps), "torch": (3, step_module._TorchOps)}
BATCH_OPS["onednn"] = (3, step_module._CpuBatchOps)


@pytest.mark.parametrize("ops", list(BATCH_OPS))  # one row on the CPU takes numpy's ops, batches torch's or oneDNN's
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("layers", [1, 2])  # one is the default model
def test_single_steps_match_the_fused_layers(cell, ops, layers, monkeypatch):
    if ops == "onednn" and not onednn.available():
        pytest.skip("oneDNN's inner product is not callable in this torch build")
    batch, ops_class = BATCH_OPS[ops]
    monkeypatch.setattr(step_module, "_ops_for", lambda *_: ops_class)
    s = sampler(cell, layers=layers)
    ids = torch.randint(0, len(VOCAB), (batch, 9))
    with torch.inference_mode():
        expected, expected_state = s.model(ids)
        buffers = s._step.start(s.model.init_state(batch))
        assert buffers["ops"] is ops_class
        for t in range(9):
            logits = torch.as_tensor(s._step(ids[:, t], buffers))
            torch.testing.assert_close(logits, expected[:, t], atol=1e-5, rtol=1e-5)
    for got, want in zip(s._step.state(buffers), expected_state, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_ops_follow_the_batch_and_the_size_of_its_products(monkeypatch):
    ops_for = step_module._ops_for
    assert ops_for(True, 1, 512) is step_module._NumpyOps
    assert ops_for(False, 1, 512) is ops_for(False, 64, 512) is step_module._TorchOps
    assert ops_for(True, 8, 128) is step_module._TorchOps  # too small to repay oneDNN's extra calls
    big = step_module._CpuBatchOps if onednn.available() else step_module._TorchOps
    assert ops_for(True, 2, 512) is ops_for(True, 64, 512) is big
    monkeypatch.setattr(onednn, "available", lambda: False)
    assert ops_for(True, 64, 512) is step_module._TorchOps


def test_the_weights_are_made_once_for_batches_of_every_size(monkeypatch):
    """A server starts a batch whenever a row joins or leaves; packing the weights for each one cost
    milliseconds every time."""
    made = []
    monkeypatch.setattr(step_module._TorchOps, "matrix", staticmethod(lambda w: made.append(w) or w))
    monkeypatch.setattr(step_module, "_ops_for", lambda *_: step_module._TorchOps)
    s = sampler(layers=2)
    for batch in (2, 5, 3):
        s.step.start(s.model.init_state(batch))
    assert len(made) == 5  # each layer's input and recurrent weights, and the head's, once


def test_onednn_weights_are_laid_out_for_one_batch_whatever_batch_comes_first(monkeypatch):
    """A layout chosen by the first batch would make a batch's digits depend on the batches run before it."""
    packed_for = []
    monkeypatch.setattr(onednn, "pack", lambda weight, batch: packed_for.append(batch) or weight.t())
    monkeypatch.setattr(step_module, "_ops_for", lambda *_: step_module._CpuBatchOps)
    s = sampler()
    for batch in (3, 7):
        s.step.start(s.model.init_state(batch))
    assert packed_for and set(packed_for) == {step_module._PACKED_ROWS}


def test_batches_sample_the_same_text_with_or_without_onednn(monkeypatch):
    s = sampler(hidden=256)
    with_onednn = s.generate_many("abc", 40, num_samples=4, seed=5, top_k=3)
    monkeypatch.setattr(onednn, "available", lambda: False)
    assert s.generate_many("abc", 40, num_samples=4, seed=5, top_k=3) == with_onednn


def test_same_seed_same_text_and_stream_equals_generate():
    s = sampler()
    text = s.generate("abc", 60, seed=5, top_k=4)
    assert len(text) == 60
    assert s.generate("abc", 60, seed=5, top_k=4) == text
    assert "".join(s.stream("abc", 60, seed=5, top_k=4)) == text
    assert s.generate("abc", 60, seed=6, top_k=4) != text


def test_greedy_is_deterministic_and_equals_temperature_zero():
    s = sampler()
    greedy = s.generate("ab", 40, greedy=True, seed=1)
    assert s.generate("ab", 40, greedy=True, seed=2) == greedy
    assert s.generate("ab", 40, temperature=0, seed=3) == greedy


def test_batch_of_samples_matches_their_count_and_differs():
    samples = sampler().generate_many("a", 50, num_samples=4, seed=3)
    assert len(samples) == 4 and all(len(t) == 50 for t in samples)
    assert len(set(samples)) > 1


def test_empty_prime_and_zero_length():
    s = sampler()
    assert len(s.generate("", 10, seed=1)) == 10
    assert s.generate("abc", 0) == ""


@pytest.mark.parametrize(
    "kwargs",
    [dict(temperature=-1), dict(top_k=-1), dict(top_p=0), dict(top_p=1.5), dict(max_new_chars=-1)],
)
def test_bad_options_raise_before_any_output(kwargs):
    with pytest.raises(CharRNNError):
        sampler().stream("ab", **kwargs)


def test_unknown_prime_characters_are_named():
    with pytest.raises(CharRNNError, match="'Z'"):
        sampler().generate("aZb", 5)


def torch_picker(seed):
    generator = torch.Generator().manual_seed(seed)
    return lambda row, options: pick_next(torch.tensor([row]), options, generator).item()


def numpy_picker(seed):
    rng = np.random.default_rng(seed)
    return lambda row, options: pick_next_row(np.array(row, dtype=np.float32), options, rng)


PICKERS = pytest.mark.parametrize("make_picker", [torch_picker, numpy_picker], ids=["torch", "numpy"])


@PICKERS
@settings(max_examples=40, deadline=None)
@given(
    logits=st.lists(st.floats(-8, 8, width=32), min_size=6, max_size=6),  # as the model makes them
    top_k=st.integers(0, 6),
    top_p=st.floats(0.05, 1.0),
    seed=st.integers(0, 2**31),
)
def test_top_k_and_top_p_never_pick_outside_the_allowed_set(make_picker, logits, top_k, top_p, seed):
    row = torch.tensor([logits])
    probs = torch.softmax(row[0], 0)
    order = torch.argsort(row[0], descending=True, stable=True).tolist()
    allowed = set(order[:top_k] if top_k else order)
    ranked = probs[order]
    # nucleus: the smallest prefix of the ranking whose mass reaches top_p
    cumulative = torch.cumsum(ranked, 0)
    nucleus = set(order[: int((cumulative - ranked < top_p).sum())])
    pick = make_picker(seed)
    options = SamplingOptions(top_k=top_k, top_p=top_p)
    ties = {i for i, v in enumerate(logits) if any(v == logits[j] for j in allowed | nucleus)}
    for _ in range(20):
        picked = pick(logits, options)
        assert picked in ((allowed | ties) & (nucleus | ties))


@PICKERS
def test_top_k_one_is_greedy(make_picker):
    pick = make_picker(0)
    assert {pick([0.1, 3.0, 2.9, -1.0], SamplingOptions(top_k=1)) for _ in range(30)} == {1}


@PICKERS
@pytest.mark.parametrize(
    "options", [SamplingOptions(), SamplingOptions(temperature=0.5, top_k=3), SamplingOptions(top_p=0.8)]
)
def test_pickers_draw_from_the_softmax_they_describe(make_picker, options):
    logits = [2.0, 1.0, 0.5, 0.0, -1.0]
    scaled = torch.tensor(logits) / options.temperature
    probs = torch.softmax(scaled, 0)
    if options.top_k:
        probs[options.top_k :] = 0
    if options.top_p < 1:
        probs[(torch.cumsum(probs, 0) - probs) >= options.top_p] = 0
    probs /= probs.sum()
    pick, draws = make_picker(7), 20_000
    counts = np.bincount([pick(logits, options) for _ in range(draws)], minlength=len(logits))
    expected = draws * probs.numpy()
    # four standard deviations of a binomial count: fails for a wrong distribution, not for chance
    assert np.all(np.abs(counts - expected) <= 4 * np.sqrt(expected * (1 - probs.numpy())) + 1)


def test_recurrent_step_tabulates_the_first_layer_per_character():
    s = sampler()
    assert isinstance(s._step, RecurrentStep)
    assert s._step.weights["table"][0].shape == (len(VOCAB), 4 * 24)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.lists(
        st.tuples(st.floats(0.05, 3.0), st.integers(0, 12), st.floats(0.05, 1.0), st.booleans()), min_size=1, max_size=6
    ),
)
def test_picking_rows_together_equals_picking_each_alone(seed, rows):
    """The server's batched choice gives each row what `pick_next_row` gives it with the same draw."""
    gen = np.random.default_rng(seed)
    logits = (gen.standard_normal((len(rows), 10)) * 3).astype(np.float32)
    options = [SamplingOptions(temperature=t, top_k=k, top_p=p, greedy=g) for t, k, p, g in rows]
    alone = [pick_next_row(logits[i], o, np.random.default_rng([seed, i])) for i, o in enumerate(options)]
    draws = np.array(
        [np.nan if o.is_greedy else np.random.default_rng([seed, i]).random() for i, o in enumerate(options)]
    )
    together = pick_next_rows(
        logits,
        np.array([o.temperature for o in options]),
        np.array([o.top_k for o in options]),
        np.array([o.top_p for o in options]),
        draws,
    )
    assert together.tolist() == alone


@pytest.mark.parametrize("vocab", [1, 2, 10, 83, 5000])
def test_ranking_rows_equals_a_stable_argsort(vocab):
    """Ties keep column order, -0.0 ties with 0.0, infinities rank at the ends: as numpy's stable argsort."""
    gen = np.random.default_rng(vocab)
    for _ in range(20):
        logits = (gen.standard_normal((5, vocab)) * 3).astype(np.float32)
        logits[:, ::3] = np.round(logits[:, ::3])  # many ties
        logits[0, :4] = [0.0, -0.0, 0.0, -0.0][:vocab]
        logits[1, -1], logits[2, 0] = np.inf, -np.inf
        assert np.array_equal(rank_rows(logits), np.argsort(-logits, axis=1, kind="stable"))
    wide = gen.standard_normal((3, 7))  # not float32: the plain sort
    assert np.array_equal(rank_rows(wide), np.argsort(-wide, axis=1, kind="stable"))


def test_warming_reads_a_shared_prime_once_and_each_row_gets_its_state(monkeypatch):
    s = sampler()
    primes = ["abc d", "hij a", "abc d", "abc d", "hij a"]
    alone = [s.warm(prime) for prime in primes]
    read = []
    forward = s.model.forward
    monkeypatch.setattr(s.model, "forward", lambda ids, state: read.append(len(ids)) or forward(ids, state))
    last, state = s.warm_many(primes)
    assert read == [2]  # two distinct primes, one pass
    for row, (want_last, want_state) in enumerate(alone):
        assert int(last[row]) == int(want_last[0])
        for got, want in zip(state, want_state, strict=True):
            torch.testing.assert_close(got[:, row], want[:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make_picker", [lambda: "row", lambda: "batch", lambda: "rows"])
def test_a_top_p_below_float32s_range_keeps_the_likeliest(make_picker):
    """top_p = 5e-324 (found by the server's fuzz) is 0 in float32: the likeliest character must still stay."""
    logits = np.array([0.1, 2.0, -1.0, 0.5], dtype=np.float32)
    options = SamplingOptions(top_p=5e-324)
    kind = make_picker()
    if kind == "row":
        got = pick_next_row(logits, options, np.random.default_rng(0))
    elif kind == "batch":
        got = int(pick_next(torch.from_numpy(logits)[None], options, torch.Generator().manual_seed(0))[0])
    else:
        got = int(pick_next_rows(logits[None], np.array([1.0]), np.array([0]), np.array([5e-324]), np.array([0.5]))[0])
    assert got == 1
