"""`score` (and `Sampler.score`), stop strings in `sample`/`generate`, and `sample --checkpoints all`."""

import json
import math

import pytest
import torch
from torch.nn import functional as F

import charrnn
from charrnn.generate.stops import cut_at_stop, until_stop

from conftest import run_main


def test_score_agrees_with_eval_and_with_the_models_own_forward_pass(tiny_run, anna_50k):
    sampler = charrnn.load(tiny_run)
    text = anna_50k.read_text(encoding="utf-8")[:9000]  # more than one scoring window
    scored = sampler.score(text, top=3)
    assert scored.chars == len(text) - 1
    ids = sampler.vocab.encode(text)
    assert scored.loss == pytest.approx(charrnn.evaluate(sampler.model, ids, streams=1).loss, abs=1e-5)
    with torch.inference_mode():
        head = torch.as_tensor(ids[:200].astype("int64"))[None]
        logits, _ = sampler.model(head[:, :-1], sampler.model.init_state(1))
        want = -F.cross_entropy(logits[0], head[0, 1:], reduction="none")
    assert scored.logprobs[:199] == pytest.approx(want.tolist(), abs=1e-5)
    for i, top in enumerate(scored.top[:200]):  # the three likeliest: the character itself, or all above it
        assert len(top) == 3
        assert text[i + 1] in top or scored.logprobs[i] <= min(top.values()) + 1e-6


def test_score_command_prints_the_loss_and_each_character(tiny_run):
    done = run_main("score", tiny_run, "--text", "It was a bright", "--json", "--per-char", "--top", "2")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["chars"] == 14 and len(report["per_char"]) == 14
    assert report["bpc"] == pytest.approx(report["loss"] / math.log(2))
    assert report["logprob"] == pytest.approx(sum(c["logprob"] for c in report["per_char"]))
    plain = run_main("score", tiny_run, "--text", "It was a bright")
    assert "nats/char" in plain.stdout and f"{report['loss']:.4f}" in plain.stdout
    for args, needle in (
        (["--text", "x"], "too short"),
        (["--text", "☃☃"], "☃"),
        (["--file", "/nonexistent"], "no such file"),
    ):
        bad = run_main("score", tiny_run, *args)
        assert bad.returncode == 1 and needle in bad.stderr and "Traceback" not in bad.stderr


def test_stop_strings_cut_the_text_and_hold_back_what_may_begin_one():
    assert "".join(until_stop("abcXYdefXYZghi", ["XYZ"])) == "abcXYdef"
    assert list(until_stop("aXb", ["XY"])) == ["a", "Xb"]  # "X" waits until "b" shows it is no stop
    assert cut_at_stop("one\n\ntwo", ["\n\n", "w"]) == "one"
    assert "".join(until_stop("abc", [""])) == "abc"


def test_generate_and_sample_end_at_a_stop(tiny_run):
    sampler = charrnn.load(tiny_run)
    full = sampler.generate("The ", 400, seed=3)
    stop = full[150:152]
    want = full[: full.index(stop)]
    assert sampler.generate("The ", 400, seed=3, stop=[stop]) == want
    assert sampler.generate_many("The ", 400, num_samples=2, seed=3, stop=[stop])[0] == cut_at_stop(
        sampler.generate_many("The ", 400, num_samples=2, seed=3)[0], [stop]
    )
    done = run_main("sample", tiny_run, "--prime", "The ", "--length", "400", "--seed", "3", "--stop", stop)
    assert done.returncode == 0 and done.stdout == f"The {want}\n"


def test_sample_from_each_checkpoint(tiny_run):
    done = run_main("sample", tiny_run, "--checkpoints", "all", "--prime", "A", "--length", "30", "--seed", "4")
    assert done.returncode == 0, done.stderr
    headers = [line for line in done.stdout.splitlines() if line.startswith("--- step")]
    assert [h.split()[2].rstrip(",") for h in headers] == ["10", "20", "30"]
    assert all("validation loss" in h for h in headers)
    bad = run_main("sample", tiny_run / "nothing", "--checkpoints", "all")
    assert bad.returncode == 1 and "run directory" in bad.stderr


def test_score_of_an_ensemble_of_one_model_twice_is_that_models(tiny_run):
    alone = json.loads(run_main("score", tiny_run, "--text", "It was a bright", "--json").stdout)
    twice = json.loads(run_main("score", tiny_run, "--with", tiny_run, "--text", "It was a bright", "--json").stdout)
    assert twice["loss"] == pytest.approx(alone["loss"], abs=1e-5) and "mean of 2" in twice["model"]
