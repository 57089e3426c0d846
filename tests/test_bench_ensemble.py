"""benchmarks/bench_ensemble.py's scoring of kept runs: each alone, the first k averaged, all but one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import charrnn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_ensemble import score


def test_copies_of_one_run_score_as_that_run(tiny_run):
    best = charrnn.load(tiny_run).info.val_loss  # what training measured on its validation text
    scores = score([tiny_run, tiny_run, tiny_run])
    assert scores["alone"] == pytest.approx([best] * 3, abs=1e-4)
    assert list(scores["first_k"]) == [2, 3]
    assert list(scores["first_k"].values()) + list(scores["all_but"].values()) == pytest.approx([best] * 5, abs=1e-4)
