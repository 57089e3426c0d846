"""A prime read from a cold start: the zero state must not lead the model astray.

Each epoch's streams start at the same places with a zero state, so without more the zero state is only
ever followed by those few stretches of text, and the model learns them instead of "a text may start
here" (a 5-minute anna.txt model continued the prime "L" with digits). Two fixes, each tested here on a
text whose stream starts are all followed by a character found nowhere else: training zeroes streams at
random windows (batches.py), and a prime is read after the vocabulary's lead-in, a line break (vocab.py).
"""

import os
import random

import numpy as np
import pytest
import torch

import charrnn
from charrnn.data.batches import BatchSource
from charrnn.runs.rundir import load_model

STREAMS, STREAM_LEN = 16, 1000


def fixed_start_text(path) -> str:
    """Lines of words in which 'L' is always followed by a vowel, except where each stream starts: 'Lq'."""
    rng = random.Random(0)
    text = ""
    while len(text) <= STREAMS * STREAM_LEN:
        text += rng.choice(["La", "Lo", "Lu", "mo", "su", "ta"]) + rng.choice(" " * 7 + "\n")
    chars = list(text[: STREAMS * STREAM_LEN + 1])
    for k in range(STREAMS):
        chars[k * STREAM_LEN : k * STREAM_LEN + 2] = "Lq"
    path.write_text("".join(chars))
    return path


def train(text, out, **flags):
    model = charrnn.ModelConfig(hidden=32, layers=1, embed_dim=8, dropout=0.0)
    config = charrnn.TrainConfig(texts=(str(text),), out=str(out), model=model, batch_size=STREAMS, seq_len=1,
                                 lr=1e-2, warmup_steps=10, epochs=2, val_fraction=0.0, save_interval=0, seed=1,
                                 **flags)  # fmt: skip
    charrnn.train(config, stream=open(os.devnull, "w"))
    return load_model(out, "latest")[:2]


def cold_probability(model, vocab, prime: str, char: str) -> float:
    """P(char | prime) read from the zero state, as nothing but the bare model does."""
    with torch.inference_mode():
        logits, _ = model(torch.tensor(vocab.encode(prime)[None].astype("int64")))
    return logits[0, -1].softmax(-1)[vocab.chars.index(char)].item()


def next_probability(sampler, prime: str, char: str) -> float:
    """P(char | prime) as sampling from `prime` draws it: the prime read as `Sampler.warm` reads it."""
    last, state = sampler.warm(prime)
    with torch.inference_mode():
        logits, _ = sampler.model(last[:, None], state)
    return logits[0, -1].softmax(-1)[sampler.vocab.chars.index(char)].item()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cold")
    text = fixed_start_text(tmp / "text.txt")
    return {"no resets": train(text, tmp / "none", reset_rate=0.0), "resets": train(text, tmp / "resets")}


def test_without_resets_the_zero_state_learns_the_stream_starts(trained):
    model, vocab = trained["no resets"]
    assert cold_probability(model, vocab, "L", "q") > 0.25  # what makes a cold prime go astray


def test_resets_at_random_windows_teach_the_zero_state_that_text_may_start_anywhere(trained):
    model, vocab = trained["resets"]
    assert cold_probability(model, vocab, "L", "q") < 0.2


def test_a_prime_read_after_the_lead_in_continues_as_the_text_does(trained):
    model, vocab = trained["no resets"]
    sampler = charrnn.Sampler(model, vocab)
    assert vocab.lead_in == "\n"
    assert next_probability(sampler, "L", "q") < 0.1
    last, state = sampler.warm("Lo")
    with torch.inference_mode():
        _, want = model(torch.tensor(vocab.encode("\nL")[None].astype("int64")))
    assert vocab.chars[int(last[0])] == "o"
    for got, expected in zip(state, want, strict=True):
        torch.testing.assert_close(got, expected)


def test_resets_are_drawn_per_stream_and_window_the_same_on_every_rank_and_resume():
    ids = np.arange(4_001) % 7
    source = BatchSource(ids, 8, 5, reset_rate=0.2, reset_seed=3)
    drawn = {(e, w): source.resets(e, w) for e in range(2) for w in range(source.windows_per_epoch)}
    assert all(drawn[(e, 0)] is None for e in range(2))  # an epoch's start resets every row anyway
    rows = torch.stack([r if r is not None else torch.zeros(8, dtype=torch.bool) for r in drawn.values()])
    assert 0.15 < rows.float().mean() < 0.25  # each row, each window, with the rate's chance
    assert not torch.equal(rows[1], rows[2])
    again = BatchSource(ids, 8, 5, reset_rate=0.2, reset_seed=3)
    shard = again.shard(1, 2)
    for (epoch, window), full in drawn.items():
        mine = shard.resets(epoch, window)
        want = None if full is None or not full[1::2].any() else full[1::2]
        assert (mine is None and want is None) or torch.equal(mine, want)
    assert BatchSource(ids, 8, 5).resets(0, 3) is None  # no rate: no resets
