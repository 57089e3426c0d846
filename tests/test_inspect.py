"""Seeing inside a model: `trace` against the fused layers, the detectors on constructed strings, and
`cells` finding a unit planted by hand."""

import json

import numpy as np
import pytest
import torch

from charrnn.data.vocab import Vocab
from charrnn.errors import CharRNNError
from charrnn.generate.sampler import Sampler
from charrnn.generate.scoring import score_text
from charrnn.inspect.cells import best_cells, gate_saturation
from charrnn.inspect.detectors import BUILT_IN, in_quotes, indentation, line_position, parse_detector, to_line_end
from charrnn.inspect.trace import GATES, trace
from charrnn.model.ensemble import Ensemble
from charrnn.model.network import CharRNN, ModelConfig

from conftest import run_main

TEXT = 'She said "no (not [yet])."\n  Then: "fine" 42 times.\nOK'
VOCAB = Vocab.from_text(TEXT + "abcdefghijklmnopqrstuvwxyz,H")


def model(cell: str, layers: int, seed: int = 0) -> CharRNN:
    torch.manual_seed(seed)
    return CharRNN(ModelConfig(vocab_size=len(VOCAB), cell=cell, hidden=12, layers=layers, embed_dim=6)).eval()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("layers", [1, 2])
def test_trace_is_what_the_fused_layers_compute(cell, layers):
    m = model(cell, layers)
    traced = trace(m, VOCAB, TEXT)
    ids = torch.as_tensor(VOCAB.encode(TEXT).astype("int64"))[None]
    with torch.inference_mode():
        out, state = m.rnn(m.embed(ids))
    assert np.allclose(traced.layers[-1]["h"], out[0].numpy(), atol=1e-5)
    final = state if cell == "lstm" else (state,)
    assert np.allclose([layer["h"][-1] for layer in traced.layers], final[0][:, 0].numpy(), atol=1e-5)
    if cell == "lstm":
        assert np.allclose([layer["c"][-1] for layer in traced.layers], final[1][:, 0].numpy(), atol=1e-5)
    assert set(traced.kinds()) == {"h", *(["c"] if cell == "lstm" else []), *GATES[cell]}
    scored = score_text(m, VOCAB, TEXT)
    assert np.isnan(traced.log_probs[0]) and np.allclose(traced.log_probs[1:], scored.logprobs, atol=1e-5)
    assert traced.top_ids.shape == (len(TEXT), 5) and np.all(np.diff(traced.top_log_probs, axis=1) <= 0)
    assert np.exp(traced.top_log_probs).sum(axis=1).max() <= 1 + 1e-9


def test_gates_are_gates():
    traced = trace(model("lstm", 2), VOCAB, TEXT)
    for layer in traced.layers:
        for gate in ("input", "forget", "output"):
            assert layer[gate].min() >= 0 and layer[gate].max() <= 1
        assert layer["candidate"].min() >= -1 and layer["candidate"].max() <= 1
    saturation = gate_saturation(traced)
    assert set(saturation[1]) == {"input", "forget", "output"} and 0 <= saturation[2]["forget"]["left"] <= 1


def test_trace_refuses_an_ensemble_and_an_empty_text():
    with pytest.raises(CharRNNError, match="not an ensemble"):
        trace(Ensemble([model("lstm", 1), model("lstm", 1, 1)]), VOCAB, TEXT)
    with pytest.raises(CharRNNError, match="empty"):
        trace(model("lstm", 1), VOCAB, "")


def test_detectors_on_constructed_strings():
    text = 'a "b c" d\n  e "f'
    assert in_quotes(text).tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1]
    assert line_position(text).tolist()[8:12] == [8, 9, 0, 1]
    assert to_line_end(text).tolist()[7:11] == [2, 1, 0, 6] and to_line_end(text)[-1] == 1
    assert indentation(text).tolist() == [0] * 10 + [2] * 6
    assert BUILT_IN["bracket depth"]("(a[b]c)d").tolist() == [1, 1, 2, 2, 2, 1, 1, 0]
    assert BUILT_IN["capital"]("aB1").tolist() == [0, 1, 0] and BUILT_IN["digit"]("aB1").tolist() == [0, 0, 1]
    assert BUILT_IN["sentence start"]("Hi. There").tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0]
    name, detect = parse_detector("vowel=[aeiou]")
    assert name == "vowel" and detect("bat").tolist() == [0, 1, 0]
    for bad in ("novalue", "=x", "x=[unclosed"):
        with pytest.raises(CharRNNError, match="--detect"):
            parse_detector(bad)


def quote_tracking_lstm(unit: int = 3) -> CharRNN:
    """An LSTM whose unit `unit` holds c = 1 between double quotes and 0 outside them: at a quote it
    forgets and writes tanh(A - B h), which is 1 from h = 0 and 0 from h = tanh(1)."""
    m = model("lstm", 1)
    hidden, quote = m.config.hidden, VOCAB.chars.index('"')
    big, a = 12.0, 6.0
    with torch.no_grad():
        m.embed.weight.zero_()
        m.embed.weight[quote, 0] = 1.0  # embedding dimension 0: "this is a quote"
        rows = {gate: gate * hidden + unit for gate in range(4)}  # i, f, g, o
        for row in rows.values():
            m.rnn.weight_ih_l0[row].zero_()
            m.rnn.weight_hh_l0[row].zero_()
            m.rnn.bias_ih_l0[row] = 0.0
            m.rnn.bias_hh_l0[row] = 0.0
        m.rnn.bias_ih_l0[rows[0]], m.rnn.weight_ih_l0[rows[0], 0] = -big, 2 * big  # write at a quote only
        m.rnn.bias_ih_l0[rows[1]], m.rnn.weight_ih_l0[rows[1], 0] = big, -2 * big  # forget at a quote only
        m.rnn.weight_ih_l0[rows[2], 0], m.rnn.weight_hh_l0[rows[2], unit] = a, -a / np.tanh(1.0)
        m.rnn.bias_ih_l0[rows[3]] = big  # always show the cell
    return m


def test_cells_finds_a_unit_planted_to_track_quotes():
    text = ('Then "yes, quite" and so on. ' * 8) + 'He said "a long quote (with more words) in it" then. ' * 4
    traced = trace(quote_tracking_lstm(3), VOCAB, text)
    not_quote = np.array([ch != '"' for ch in text])  # the cell turns at a quote; the detector counts both in
    assert np.allclose(traced.layers[0]["c"][not_quote, 3], in_quotes(text)[not_quote], atol=0.05)
    rows, shares = best_cells(traced, {"in quotes": in_quotes}, top=1, kinds=("c",))
    assert (rows[0].layer, rows[0].unit, rows[0].kind) == (1, 3, "c") and rows[0].correlation > 0.9
    assert 0 < shares["c"] <= 1


def test_the_cells_command_lists_rows_and_takes_detectors_of_ones_own(tiny_run, anna_50k):
    done = run_main("cells", tiny_run, anna_50k, "--chars", "3000", "--detect", "vowel=[aeiou]", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    detectors = {row["detector"] for row in report["cells"]}
    assert detectors >= {"in quotes", "line position", "vowel"} and report["chars"] == 3000
    row = report["cells"][0]
    assert set(row) == {"detector", "layer", "unit", "kind", "correlation"} and -1 <= row["correlation"] <= 1
    assert set(report["interpretable"]) >= {"h", "c"} and set(report["saturation"]) == {"1", "2"}
    plain = run_main("cells", tiny_run, "--chars", "2000")  # the run's own validation text
    assert plain.returncode == 0 and "interpretable" in plain.stdout and "gates:" in plain.stdout
    bad = run_main("cells", tiny_run, "--detect", "nothing")
    assert bad.returncode == 1 and "--detect takes NAME=REGEX" in bad.stderr
    ensemble = run_main("cells", tiny_run, "--with", tiny_run, "--chars", "100")
    assert ensemble.returncode == 1 and "not an ensemble" in ensemble.stderr


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("rows", [1, 3])  # numpy's one-row step and torch's batch step
def test_a_clamped_unit_holds_its_value_and_changes_the_text(cell, rows):
    sampler = Sampler(model(cell, 2), VOCAB)
    sampler.clamp({(2, 5): 0.9, (1, 0): -0.5})
    with torch.inference_mode():
        ids, state = sampler.warm("She", rows)
        buffers = sampler.step.start(state)
        sampler._hold(buffers)
        for _ in range(3):
            ids = sampler.step(ids.numpy() if rows == 1 else ids, buffers)  # logits; the state moved
            sampler._hold(buffers)
            ids = torch.as_tensor(np.asarray(ids).argmax(-1)).reshape(rows)
        held = sampler.step.state(buffers)
    for part in held if cell == "lstm" else held[:1]:
        assert torch.allclose(part[1, :, 5], torch.tensor(0.9)) and torch.allclose(part[0, :, 0], torch.tensor(-0.5))
    free = Sampler(model(cell, 2), VOCAB).generate("She", 200, seed=3)
    strong = Sampler(model(cell, 2), VOCAB)
    strong.clamp({(1, u): 1.0 for u in range(12)})
    assert strong.generate("She", 200, seed=3) != free


def test_bad_clamps_are_one_line(tiny_run):
    for flag, message in (("3:0=1", "layers 1 to 2, units 0 to 31"), ("1:32=0", "units 0 to 31")):
        done = run_main("sample", tiny_run, "--clamp", flag, "--length", "5")
        assert done.returncode == 1 and message in done.stderr and len(done.stderr.splitlines()) == 1
    malformed = run_main("sample", tiny_run, "--clamp", "1-2=3")
    assert malformed.returncode == 2 and "LAYER:UNIT=VALUE" in malformed.stderr
    ensemble = run_main("sample", tiny_run, "--with", tiny_run, "--clamp", "1:0=1")
    assert ensemble.returncode == 1 and "drop --with" in ensemble.stderr
    held = run_main("sample", tiny_run, "--clamp", "1:0=0.5", "--clamp", "2:3=-1", "--length", "50", "--seed", "1")
    assert held.returncode == 0 and held.stdout != run_main("sample", tiny_run, "--length", "50", "--seed", "1").stdout


def test_closing_distances_and_the_comparison_with_an_ngram():
    from charrnn.inspect.versus import closing_distances, versus

    text = 'a (bc) "de" [f(g)]'
    assert closing_distances(text) == {5: 3, 10: 3, 16: 2, 17: 5}
    model_loss = np.full(len(text), 1.0)
    model_loss[0] = np.nan
    compared = versus(text, model_loss, np.full(len(text), 2.0))
    rows = {row["name"]: row for row in compared["classes"]}
    assert rows["lower-case letter"]["count"] == 6 and rows["lower-case letter"]["model"] == 1.0
    assert rows["lower-case letter"]["ngram"] == 2.0 and rows["digit"]["model"] is None
    assert [row["count"] for row in compared["closing"]] == [4, 0, 0, 0]


def test_a_model_trained_on_text_with_quotes_grows_a_quote_cell(tmp_path):
    import os

    import charrnn

    rng = np.random.default_rng(0)
    words = ["the", "a", "cat", "sat", "on", "mat", "and", "ran", "far", "dog"]
    pieces = []
    for _ in range(3000):
        said = " ".join(rng.choice(words, rng.integers(2, 9)))
        pieces.append(f'he said "{said}" and then ' if rng.random() < 0.5 else f"{said} . ")
    text = tmp_path / "quotes.txt"
    text.write_text("".join(pieces), encoding="ascii")
    config = charrnn.TrainConfig(texts=(str(text),), out=str(tmp_path / "run"), max_steps=1200, batch_size=16,
                                 seq_len=64, lr=1e-2, warmup_steps=10, eval_every=1200, seed=3,
                                 model=charrnn.ModelConfig(hidden=32, layers=1, embed_dim=8, dropout=0.0))  # fmt: skip
    charrnn.train(config, stream=open(os.devnull, "w"))
    sampler = charrnn.load(tmp_path / "run")
    sample = text.read_text()[-4000:]
    traced = trace(sampler.model, sampler.vocab, sample)
    rows, _ = best_cells(traced, {"in quotes": in_quotes}, top=1, kinds=("c", "h"))
    assert abs(rows[0].correlation) > 0.5, rows  # here 0.71 (c); after 300 steps 0.23, no quote cell yet


def test_trace_is_part_of_the_public_api():
    import charrnn

    assert charrnn.trace is trace and "trace" in charrnn.__all__
