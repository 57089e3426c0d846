"""`--init-from` (fine-tuning), `--patience` (early stopping) and `--keep all`."""

import json
import os
import random

import pytest

import charrnn
from charrnn.runs.metrics import read_metrics
from charrnn.runs.rundir import RunDir

from conftest import TINY_FLAGS, run_main, tiny_config

QUIET = open(os.devnull, "w")


def first_train_loss(run) -> float:
    return float(read_metrics(RunDir(run).metrics_file)[0]["train_loss"])


def test_a_fine_tuned_run_starts_from_the_other_runs_weights(tiny_run, anna_50k, tmp_path):
    text = tmp_path / "new.txt"
    text.write_text(anna_50k.read_text(encoding="utf-8")[25_000:], encoding="utf-8")
    fresh = charrnn.train(tiny_config(text, tmp_path / "fresh", max_steps=1), stream=QUIET)
    tuned = charrnn.train(tiny_config(text, tmp_path / "tuned", max_steps=1, init_from=str(tiny_run)), stream=QUIET)
    assert fresh.step == tuned.step == 1
    trained = float(read_metrics(RunDir(tiny_run).metrics_file)[-1]["train_loss"])
    assert abs(first_train_loss(tmp_path / "tuned") - trained) < 0.3
    assert first_train_loss(tmp_path / "fresh") - first_train_loss(tmp_path / "tuned") > 0.5
    record = RunDir(tmp_path / "tuned").read("")
    assert record["train"]["init_from"].endswith(".safetensors") and record["train"]["model"]["hidden"] == 32


def test_init_from_refuses_another_architecture_and_unknown_characters(tiny_run, anna_50k, tmp_path):
    text = tmp_path / "new.txt"
    text.write_text(anna_50k.read_text(encoding="utf-8")[:20_000], encoding="utf-8")
    done = run_main(
        "train", text, "--out", tmp_path / "a", "--init-from", tiny_run, "--hidden", "64", "--max-steps", "1"
    )
    assert done.returncode == 1 and "(--hidden) 64 conflicts" in done.stderr and "32" in done.stderr
    text.write_text(text.read_text(encoding="utf-8") + "☃", encoding="utf-8")
    done = run_main("train", text, "--out", tmp_path / "b", "--init-from", tiny_run, "--max-steps", "1")
    assert done.returncode == 1 and "'☃'" in done.stderr and "--init-from" in done.stderr
    done = run_main("train", text, "--out", tmp_path / "c", "--init-from", tmp_path / "nothing")
    assert done.returncode == 1 and "no such run" in done.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


@pytest.fixture
def stalling_text(tmp_path):
    """Training text the model learns ("ab" over and over) whose validation tail it cannot: the more
    it learns, the worse its validation loss."""
    rng = random.Random(0)
    path = tmp_path / "stall.txt"
    path.write_text("ab" * 4500 + "".join(rng.choice("abcdefgh") for _ in range(1000)), encoding="utf-8")
    return path


def test_patience_stops_a_run_whose_validation_stalls(stalling_text, tmp_path):
    config = tiny_config(stalling_text, tmp_path / "run", max_steps=400, patience=2, eval_every=5, save_every=5,
                         val_fraction=0.1, keep=0, model=dict(dropout=0.0))  # fmt: skip
    result = charrnn.train(config, stream=QUIET)
    assert result.stopped_by == "patience" and result.step < 400
    run = RunDir(tmp_path / "run")
    last = run.checkpoints()[-1]
    assert last.meta["stopped_by"] == "patience" and last.step == result.step
    vals = [c.val_loss for c in run.checkpoints()]
    assert min(vals) < vals[-1] and min(vals) < vals[-2]  # the two last validations were no new best
    assert run.best().step == result.step - 10
    done = run_main("train", "--resume", tmp_path / "run")
    assert done.returncode == 1 and "already finished" in done.stderr and "--patience" in done.stderr
    done = run_main("train", "--resume", tmp_path / "run", "--patience", "4", "--max-steps", str(result.step + 5))
    assert done.returncode == 0, done.stderr


def test_keep_all_keeps_every_checkpoint(anna_50k, tmp_path):
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY_FLAGS.items()]
    done = run_main("train", anna_50k, "--out", tmp_path / "r", *flags, "--max-steps", "40", "--save-every", "5",
                    "--batch-size", "8", "--seq-len", "32", "--keep", "all")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [c.step for c in RunDir(tmp_path / "r").checkpoints()] == [5, 10, 15, 20, 25, 30, 35, 40]
    bad = run_main("train", anna_50k, "--out", tmp_path / "s", "--keep", "some")
    assert bad.returncode == 2 and "number or all" in bad.stderr
    assert json.loads(run_main("info", tmp_path / "r", "--json").stdout)["config"]["keep"] == 0
