"""`charrnn sweep`: a grid trained with one budget, interrupted and resumed; by steps with workers;
the best named, an ensemble and a test tail scored; bad sets refused before anything is written."""

import json
import signal
import subprocess
import sys
import time

import pytest

import charrnn
from charrnn.data.dataset import run_part
from charrnn.runs.rundir import RunDir
from charrnn.training.sweeps import SweepConfig, parse_set

from conftest import run_main

SMALL = [
    "--set",
    "batch_size=8",
    "--set",
    "seq_len=32",
    "--set",
    "eval_every=10",
    "--set",
    "save_every=10",
    "--set",
    "keep=0",
]


def test_an_interrupted_sweep_goes_on_where_it_stopped(anna_50k, tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", str(anna_50k), "--out", str(out), "--budget", "4s", "--set", "hidden=16,24,32", *SMALL]
    process = subprocess.Popen([sys.executable, "-m", "charrnn", *args], stdout=subprocess.PIPE, text=True)
    second = out / "runs" / "hidden-24_batch_size-8_seq_len-32_eval_every-10_save_every-10_keep-0"
    deadline = time.monotonic() + 120
    while not RunDir(second).checkpoints() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 130
    first, *_, interrupted = RunDir(second).checkpoints()
    assert interrupted.meta["stopped_by"] == "SIGINT"
    done = run_main(*args)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("done before") and lines[1].endswith("time_budget") and lines[2].endswith("time_budget")
    rows = json.loads(run_main("runs", out / "runs", "--json").stdout)
    assert len(rows) == 3 and {r["state"] for r in rows} == {"finished"}
    assert RunDir(second).checkpoints()[0].meta == first.meta  # resumed, not started again
    assert RunDir(second).checkpoints()[-1].step > interrupted.step
    assert "best: " in done.stdout


def test_workers_train_by_steps_and_the_choice_is_scored_on_unseen_text(anna_50k, tmp_path):
    config = SweepConfig(texts=(str(anna_50k),), out=str(tmp_path / "s"), budget=1.0,
                         sets=(("hidden", (16, 24)), ("batch_size", (8,)), ("seq_len", (32,)), ("eval_every", (20,))),
                         workers=2, ensemble=2, split="0.8,0.1,0.1")  # fmt: skip
    result = charrnn.sweep(config, report=lambda line: None)
    plan = json.loads((tmp_path / "s" / "sweep.json").read_text())
    steps = {v["name"]: v["steps"] for v in plan["variants"]}
    assert all(s >= 1 for s in steps.values())
    assert {r.name: r.step for r in result.rows} == steps
    assert result.rows[0].best_val_loss <= result.rows[1].best_val_loss and result.best.name == result.rows[0].name
    assert result.ensemble_val is not None and set(result.test) == {"best", "ensemble"}
    test_ids = run_part(result.best, "test")  # the last tenth, which no variant trained or validated on
    assert len(test_ids) == 5000 and all(r.flags["split"] == "0.8,0.1,0.1" for r in result.rows)
    assert result.test["best"] == pytest.approx(charrnn.evaluate(charrnn.load(result.best).model, test_ids).loss)


@pytest.mark.parametrize(
    "sets, needle",
    [
        (["--set", "nosuch=1"], "not a training flag"),
        (["--set", "hidden=abc"], "not a valid int"),
        (["--set", "dropout=0.1,2"], "dropout (--dropout) must be in [0, 1)"),
        (["--set", "out=x"], "not a training flag"),
        (["--set", "hidden"], "give a flag and its values"),
    ],
)
def test_bad_sets_are_one_line_and_write_nothing(anna_50k, tmp_path, sets, needle):
    done = run_main("sweep", anna_50k, "--out", tmp_path / "s", "--budget", "1s", *sets)
    assert done.returncode == 1 and needle in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "s").exists()


def test_another_sweep_in_the_same_directory_is_refused(anna_50k, tmp_path):
    out = tmp_path / "s"
    assert run_main("sweep", anna_50k, "--out", out, "--budget", "0.5s", "--set", "hidden=16", *SMALL).returncode == 0
    done = run_main("sweep", anna_50k, "--out", out, "--budget", "0.5s", "--set", "hidden=24", *SMALL)
    assert done.returncode == 1 and "another sweep" in done.stderr


def test_parse_set_types_values_by_the_flag():
    assert parse_set("hidden=512,768") == ("hidden", (512, 768))
    assert parse_set("--lr=1e-3,3e-3") == ("lr", (1e-3, 3e-3))
    assert parse_set("shift-epochs=true,false") == ("shift_epochs", (True, False))
    assert parse_set("epochs=none,2") == ("epochs", (None, 2))
