"""`charrnn runs`: one row per run under a directory, a run that is training included."""

import json
import shutil
import signal
import subprocess
import sys
import time

from conftest import TINY_FLAGS, run_main


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def test_runs_lists_finished_stopped_and_training_runs(tiny_run, anna_50k, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(tiny_run, root / "finished")
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY_FLAGS.items()]
    argv = [sys.executable, "-m", "charrnn", "train", str(anna_50k), "--out", str(root / "live"), *flags,
            "--hidden", "48", "--batch-size", "8", "--seq-len", "32", "--save-every", "5", "--time-budget", "300"]  # fmt: skip
    trainer = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any((root / "live" / "checkpoints").glob("step-*.json")))
        rows = {r["name"]: r for r in json.loads(run_main("runs", root, "--json").stdout)}
        assert rows["live"]["state"] == "running" and rows["live"]["step"] >= 5
        assert rows["finished"]["state"] == "finished" and rows["finished"]["reason"] == "max_steps"
        assert next(r["name"] for r in json.loads(run_main("runs", root, "--json").stdout)) == "finished"  # best first
        table = run_main("runs", root).stdout.splitlines()
        assert table[0].split()[0] == "run" and "hidden" in table[0].split()  # what tells them apart has a column
        assert any(line.startswith("live") and "running" in line for line in table)
    finally:
        trainer.send_signal(signal.SIGINT)
        assert trainer.wait(60) == 130, trainer.stderr.read()
    rows = {r["name"]: r for r in json.loads(run_main("runs", root, "--json").stdout)}
    assert rows["live"]["state"] == "stopped" and rows["live"]["reason"] == "SIGINT"


def test_runs_refuses_a_directory_without_runs(tmp_path):
    done = run_main("runs", tmp_path)
    assert done.returncode == 1 and "no charrnn runs" in done.stderr
    done = run_main("runs", tmp_path / "missing")
    assert done.returncode == 1 and "no such directory" in done.stderr


def row(name: str, **flags):
    from charrnn.runs.listing import RunRow

    return RunRow(name, {"texts": ["a.txt"], **flags}, 1000, 10, 1.0, 12.3, 1.5, 1.4, "finished", "max_steps")


def test_the_table_rounds_drops_empty_columns_and_fits_the_width():
    from charrnn.runs.listing import table_lines

    rows = [
        row("a", time_budget=293.9182386759999, max_steps=None, hidden=512, tensorboard=None, init_from="/x" * 40),
        row("b", time_budget=600.0, max_steps=None, hidden=768, tensorboard=None, init_from=None),
    ]
    lines = table_lines(rows)
    assert "293.9" in lines[1] and "293.918" not in lines[1]  # rounded
    assert "max_steps" not in lines[0] and "tensorboard" not in lines[0] and "None" not in "".join(lines)
    assert "…x/x/x" in lines[1] and "/x" * 13 not in lines[1]  # a long path by its end, not whole
    narrow = table_lines(rows, width=80)
    assert all(len(line) <= 80 for line in narrow[:-1]), narrow
    assert narrow[-1].startswith("(") and "--json" in narrow[-1] and "time_budget" in narrow[-1]
    assert table_lines(rows, width=500) == lines  # room for everything: nothing left out
