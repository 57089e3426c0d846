"""benchmarks/bench_sweep.py: the split race's training-text prefixes (the same validation text at every size),
its own keys, and the runs it keeps."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import charrnn
from charrnn.data.dataset import prepare_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_sweep import split_overrides, train_job, train_prefix_text


@pytest.mark.parametrize("fraction", [0.25, 0.5, 1.0])
def test_prefix_keeps_the_validation_text(tmp_path, fraction):
    text = tmp_path / "text.txt"
    text.write_text("".join(f"line {i} of the text\n" for i in range(400)), encoding="utf-8")
    whole = prepare_data(charrnn.TrainConfig(texts=(str(text),), out=str(tmp_path / "a"), batch_size=4, seq_len=8))

    val_fraction = train_prefix_text(text, fraction, 0.1, tmp_path / "prefix.txt")
    config = charrnn.TrainConfig(
        texts=(str(tmp_path / "prefix.txt"),),
        out=str(tmp_path / "b"),
        batch_size=4,
        seq_len=8,
        val_fraction=val_fraction,
    )
    part = prepare_data(config)

    assert part.vocab.decode(part.val_ids) == whole.vocab.decode(whole.val_ids)
    train_text = whole.vocab.decode(whole.train_ids)
    assert part.vocab.decode(part.train_ids) == train_text[: round(len(train_text) * fraction)]


def test_sweep_only_keys_do_not_reach_the_config():
    overrides, scale = split_overrides("hidden=64,train_fraction=0.5,steps_scale=2,lr=1e-3")
    assert overrides == {"model": {"hidden": 64}, "lr": 1e-3}
    assert scale == 2.0


def test_kept_runs_can_be_loaded_afterwards(tmp_path, anna_50k):
    job = {"name": "tiny", "set": "hidden=16,batch_size=4,seq_len=16,eval_every=2", "steps": 3}
    record = train_job(job, str(anna_50k), "cpu", torch.get_num_threads(), keep_runs=tmp_path / "runs")
    assert record["steps"] == 3
    assert len(charrnn.load(tmp_path / "runs" / "tiny").generate("The", 5, seed=1)) == 5
