"""Ensembles: the mean of several models' probabilities, scored by `evaluate`, sampled by `Sampler`,
and loaded from runs by `charrnn.load([...])` and `--with`."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import torch

import charrnn
from charrnn.data.vocab import Vocab
from charrnn.generate.sampler import Sampler
from charrnn.model.ensemble import Ensemble, load_ensemble, mean_log_probs
from charrnn.model.network import CharRNN

from conftest import run_cli, tiny_config

VOCAB = Vocab(tuple("abcdefghijk"))


def tiny_model(seed: int, hidden: int = 24, layers: int = 2, cell: str = "lstm") -> CharRNN:
    torch.manual_seed(seed)
    config = charrnn.ModelConfig(vocab_size=len(VOCAB), hidden=hidden, layers=layers, embed_dim=8, cell=cell)
    model = CharRNN(config).eval()
    with torch.no_grad():  # sharper than a fresh model's near-uniform guesses, so choices depend on the weights
        model.head.weight.mul_(8)
    return model


def mixed_members() -> list[CharRNN]:
    """Different cells, widths and depths: each member must keep its own state apart."""
    return [tiny_model(1), tiny_model(2, hidden=40, layers=1, cell="gru"), tiny_model(3, hidden=16, cell="rnn")]


@pytest.fixture
def ids() -> np.ndarray:
    return np.random.default_rng(0).integers(0, len(VOCAB), size=3_000).astype(np.uint8)


def test_one_member_scores_as_the_model_alone(ids):
    model = tiny_model(1)
    assert charrnn.evaluate(Ensemble([model]), ids).loss == pytest.approx(charrnn.evaluate(model, ids).loss, abs=1e-5)


def test_evaluate_scores_the_mean_of_the_members_probabilities(ids):
    members = mixed_members()
    text = torch.from_numpy(ids.astype(np.int64))[None]
    with torch.inference_mode():
        probs = [torch.softmax(member(text[:, :-1])[0], dim=-1) for member in members]
        expected = -torch.log(sum(probs) / len(members)).gather(-1, text[:, 1:, None]).mean().item()
    got = charrnn.evaluate(Ensemble(members), ids, streams=1, seq_len=100).loss
    assert got == pytest.approx(expected, abs=1e-5)
    # Averaging probabilities scores below the members' mean loss (Jensen); averaging logits would not have to.
    assert got < sum(charrnn.evaluate(member, ids, streams=1).loss for member in members) / len(members)
    # Many streams with their lead-ins split and join the flat state along the batch: close to one stream.
    assert charrnn.evaluate(Ensemble(members), ids, streams=8, seq_len=50).loss == pytest.approx(got, abs=0.02)


def test_mean_log_probs_agrees_in_numpy_and_torch():
    logits = [torch.randn(3, 11) * 5 for _ in range(4)]
    from_torch = mean_log_probs(logits)
    from_numpy = mean_log_probs([part.numpy() for part in logits])
    assert np.allclose(from_numpy, from_torch.numpy(), atol=1e-5)
    assert torch.allclose(from_torch.exp().sum(-1), torch.ones(3))


@pytest.mark.parametrize("num_samples", [1, 3], ids=["one row (numpy)", "a batch (torch)"])
def test_greedy_sampling_follows_the_ensemble_forward_pass(num_samples):
    """Each character the step-by-step sampler picks is the argmax of the ensemble run over the whole
    text so far: the sampler's per-member steps carry the same state as the fused forward pass."""
    ensemble = Ensemble(mixed_members()).eval()
    prime, length = "abcab", 40
    texts = Sampler(ensemble, VOCAB).generate_many(prime, length, num_samples, greedy=True)
    assert len(set(texts)) == 1
    with torch.inference_mode():
        ids = torch.as_tensor(VOCAB.encode(prime + texts[0]).astype("int64"))[None]
        log_probs, _ = ensemble(ids)
    expected = "".join(VOCAB.chars[i] for i in log_probs[0, len(prime) - 1 : -1].argmax(-1).tolist())
    assert texts[0] == expected
    # No member alone writes this text, so a sampler that stepped only one of them would fail here.
    alone = {Sampler(member, VOCAB).generate(prime, length, greedy=True) for member in ensemble.members}
    assert texts[0] not in alone


def test_an_ensemble_of_one_samples_as_the_model_alone():
    model = tiny_model(4)
    kwargs = dict(temperature=0.9, top_k=5, seed=11)
    assert Sampler(Ensemble([model]), VOCAB).generate("ab", 60, **kwargs) == Sampler(model, VOCAB).generate(
        "ab", 60, **kwargs
    )


def test_members_must_share_a_vocabulary_and_a_device():
    small = CharRNN(charrnn.ModelConfig(vocab_size=5, hidden=8, embed_dim=4))
    with pytest.raises(charrnn.CharRNNError, match="share one vocabulary"):
        Ensemble([tiny_model(1), small])
    with pytest.raises(charrnn.CharRNNError, match="on one device"):
        Ensemble([tiny_model(1), tiny_model(2).to("meta")])
    with pytest.raises(charrnn.CharRNNError, match="at least one model"):
        Ensemble([])


@pytest.fixture(scope="module")
def other_vocab_run(tmp_path_factory):
    """A tiny run on a text with other characters than anna.txt's."""
    folder = tmp_path_factory.mktemp("other")
    text = folder / "digits.txt"
    text.write_text("0123456789 " * 2_000)
    out = folder / "run"
    charrnn.train(tiny_config(text, out, max_steps=2), stream=open(os.devnull, "w"))
    return out


def test_load_refuses_runs_with_different_vocabularies(tiny_run, other_vocab_run):
    with pytest.raises(charrnn.CharRNNError, match=r"vocabulary .* differs"):
        load_ensemble([tiny_run, other_vocab_run])


def test_load_a_list_gives_an_ensemble_sampler(tiny_run):
    sampler = charrnn.load([tiny_run, tiny_run])
    assert isinstance(sampler.model, Ensemble)
    assert len(sampler.model.members) == 2
    # Two copies of one model average to that model.
    assert sampler.generate("The", 50, seed=3) == charrnn.load(tiny_run).generate("The", 50, seed=3)


def test_cli_eval_and_sample_with_an_ensemble(tiny_run, anna_50k, other_vocab_run):
    alone = run_cli("eval", tiny_run, anna_50k, "--json")
    twice = run_cli("eval", tiny_run, anna_50k, "--with", tiny_run, "--json")
    assert alone.returncode == twice.returncode == 0, alone.stderr + twice.stderr
    assert json.loads(twice.stdout)["loss"] == pytest.approx(json.loads(alone.stdout)["loss"], abs=1e-5)
    named = run_cli("eval", tiny_run, anna_50k, "--with", tiny_run)
    assert "mean of 2 models" in named.stdout
    sample = run_cli("sample", tiny_run, "--with", tiny_run, "--prime", "The", "--length", "30", "--seed", "1")
    assert sample.returncode == 0 and sample.stdout.startswith("The") and len(sample.stdout) >= 33, sample.stderr
    for argv, message in [
        (["eval", tiny_run, anna_50k, "--with", other_vocab_run], "vocabulary .* differs"),
        (["eval", tiny_run, anna_50k, "--with", tiny_run, "--dynamic-lr", "0.1"], "takes one model"),
        (["sample", tiny_run, "--with", tiny_run.parent / "nowhere"], "no such run directory"),
    ]:
        result = run_cli(*argv)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1 and re.search(message, lines[0]), result.stderr
