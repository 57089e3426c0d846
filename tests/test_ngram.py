"""The n-gram baseline against a plain counting of every n-gram in dicts, on tiny texts, and the command."""

import collections
import json
import math

import numpy as np
import pytest

from charrnn.model.ngram import evaluate_ngram, kneser_ney_log_probs

from conftest import run_main


def naive_kneser_ney(train: list[int], order: int, vocab_size: int):
    """p(w | context) by the textbook recursion over dicts of counts."""
    levels = {}
    for k in range(1, order + 1):
        grams = [tuple(train[i : i + k]) for i in range(len(train) - k + 1)]
        if k == order:
            counts = collections.Counter(grams)
        else:
            lefts = collections.defaultdict(set)
            for i in range(len(train) - k):
                lefts[tuple(train[i + 1 : i + 1 + k])].add(train[i])
            counts = collections.Counter({g: len(lefts[g]) for g in set(grams)})
            counts[tuple(train[:k])] += 1
        n1 = sum(1 for c in counts.values() if c == 1)
        n2 = sum(1 for c in counts.values() if c == 2)
        d = n1 / (n1 + 2 * n2) if n1 else 0.5
        sums, types = collections.Counter(), collections.Counter()
        for g, c in counts.items():
            sums[g[:-1]] += c
            types[g[:-1]] += 1
        levels[k] = (counts, sums, types, d)

    def p(w: int, context: tuple) -> float:
        prob = 1.0 / vocab_size
        for k in range(1, min(order, len(context) + 1) + 1):
            counts, sums, types, d = levels[k]
            h = tuple(context[len(context) - (k - 1) :]) if k > 1 else ()
            if sums[h] > 0:
                prob = (max(counts[(*h, w)] - d, 0) + d * types[h] * prob) / sums[h]
        return prob

    return p


@pytest.mark.parametrize("order", [1, 2, 3])
def test_agrees_with_counting_every_ngram_in_dicts(order):
    rng = np.random.default_rng(order)
    train = rng.integers(0, 4, 300)
    test = rng.integers(0, 5, 60)  # symbol 4 never trains
    got = kneser_ney_log_probs(train, [test], order, 5)[0]
    p = naive_kneser_ney(train.tolist(), order, 5)
    want = [math.log(p(int(test[t]), tuple(test[max(0, t - order + 1) : t].tolist()))) for t in range(len(test))]
    assert np.allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_each_contexts_probabilities_sum_to_one(order):
    rng = np.random.default_rng(7)
    train = rng.integers(0, 6, 500) % 4  # symbols 4 and 5 unseen
    context = list(train[100:110])
    for length in range(order):
        parts = [np.array([*context[len(context) - length :], w]) if length else np.array([w]) for w in range(6)]
        total = sum(math.exp(kneser_ney_log_probs(train, [part], order, 6)[0][-1]) for part in parts)
        assert total == pytest.approx(1.0, abs=1e-12)


def test_unseen_contexts_back_off_to_the_shorter_ones():
    train = np.array([0, 1, 2, 0, 1, 2, 0, 1, 3], dtype=np.uint8)
    unseen = np.array([3, 3, 1])  # the contexts (3,) and (3, 3) are never followed by anything in training
    three = kneser_ney_log_probs(train, [unseen], 3, 4)[0]
    no_context = kneser_ney_log_probs(train, [unseen[-1:]], 3, 4)[0][0]  # the same model's lowest order
    assert three[-1] == pytest.approx(no_context, abs=1e-12)
    seen = kneser_ney_log_probs(train, [np.array([0, 1, 1])], 3, 4)[0]  # after (0, 1): a 2 always followed
    assert seen[1] > no_context


def test_a_higher_order_fits_a_repetitive_text_better_and_counts_every_symbol_after_the_first():
    rng = np.random.default_rng(3)
    words = [rng.integers(0, 20, 6) for _ in range(30)]
    ids = np.concatenate([words[i] for i in rng.integers(0, 30, 3000)])
    results = {order: evaluate_ngram(ids[:15000], {"valid": ids[15000:]}, order, 20)["valid"] for order in (1, 3, 8)}
    assert results[8].loss < results[3].loss < results[1].loss
    assert results[8].symbols == len(ids) - 15000 - 1 and results[8].bpc == pytest.approx(results[8].loss / math.log(2))


def test_the_command_scores_validation_and_test_with_the_symbol_named(anna_50k):
    done = run_main("ngram", anna_50k, "--order", "8", "--split", "0.9,0.05,0.05", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["symbol"] == "char" and report["train_symbols"] == 45_000
    assert report["valid"]["symbols"] == report["test"]["symbols"] == 2499 and 1.0 < report["valid"]["loss"] < 3.0
    plain = run_main("ngram", anna_50k, "--order", "3")
    assert "3-gram (interpolated Kneser-Ney) over chars" in plain.stdout and "valid: " in plain.stdout
    bad = run_main("ngram", anna_50k, "--order", "0")
    assert bad.returncode == 1 and bad.stderr.strip() == "charrnn: error: --order must be in [1, 40], got 0"


def test_the_command_reads_a_runs_own_parts(tiny_run):
    report = json.loads(run_main("ngram", tiny_run, "--order", "2", "--json").stdout)
    evaluated = json.loads(run_main("eval", tiny_run, "--json").stdout)
    assert report["valid"]["symbols"] == evaluated["symbols"]
    refused = run_main("ngram", tiny_run, "--split", "0.8,0.1,0.1")
    assert refused.returncode == 1 and "split as it was trained" in refused.stderr
