"""Never lose a run: exact resume after SIGKILL, kills in the middle of a save, signals, a full disk,
a second trainer, damaged checkpoints. All through the real CLI."""

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from charrnn.runs import checkpoint as ckpt
from charrnn.runs.metrics import read_metrics
from charrnn.runs.rundir import RunDir, resolve_checkpoint

from conftest import run_cli

KILL_AT_RENAME = Path(__file__).with_name("kill_at_rename.py")
FLAGS = ["--hidden", "64", "--embed-dim", "16", "--batch-size", "16", "--seq-len", "64", "--lr", "0.01"]
FLAGS += ["--warmup-steps", "5", "--eval-every", "20", "--save-every", "20", "--seed", "11"]


def start(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "charrnn", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def wait_for_checkpoint(run_dir, min_step: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(c.step >= min_step for c in RunDir(run_dir).checkpoints()):
            return
        assert process.poll() is None, f"training ended before step {min_step}: {process.communicate()}"
        time.sleep(0.005)
    raise AssertionError("no checkpoint in time")


def model_tensors(run_dir):
    _, tensors = resolve_checkpoint(run_dir, "latest")
    return {k: v for k, v in tensors.items() if not k.startswith("rng.")}


def assert_same_run(straight, other):
    a, b = model_tensors(straight), model_tensors(other)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    columns = ("step", "train_loss", "val_loss")
    rows = [[tuple(r[c] for c in columns) for r in _rows(d)] for d in (straight, other)]
    assert rows[0] == rows[1]


def _rows(run_dir):
    return read_metrics(run_dir / "metrics.csv")


@pytest.fixture(scope="module")
def straight(tmp_path_factory, anna_50k):
    """The unbroken run every interrupted one must match: 300 steps, cosine schedule."""
    out = tmp_path_factory.mktemp("straight") / "run"
    result = run_cli("train", anna_50k, "--out", out, *FLAGS, "--max-steps", "300")
    assert result.returncode == 0, result.stderr
    return out


def test_sigkill_mid_run_then_resume_ends_bit_for_bit_like_an_unbroken_run(tmp_path, anna_50k, straight):
    out = tmp_path / "killed"
    process = start("train", anna_50k, "--out", out, *FLAGS, "--max-steps", "300")
    wait_for_checkpoint(out, 60, process)
    time.sleep(0.05)  # land somewhere between checkpoints
    process.kill()
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert RunDir(out).checkpoints()[-1].step < 300
    resumed = run_cli("train", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(straight, out)
    sample = ["sample", "--checkpoint", "latest", "--prime", "Far", "--length", "60", "--seed", "4"]
    assert run_cli(*sample[:1], out, *sample[1:]).stdout == run_cli(*sample[:1], straight, *sample[1:]).stdout
    evals = [run_cli("eval", d, anna_50k, "--checkpoint", "latest", "--json").stdout for d in (straight, out)]
    assert evals[0] == evals[1] and json.loads(evals[0])["chars"] == 49_999


@pytest.mark.parametrize("rename", [6, 7, 8])  # 1 is run.json; each save renames tensors, JSON, latest, best
def test_kill_inside_a_save_leaves_the_previous_checkpoint_and_resume_works(tmp_path, anna_50k, straight, rename):
    out = tmp_path / "run"
    argv = [sys.executable, KILL_AT_RENAME, str(rename), "train", anna_50k, "--out", out, *FLAGS, "--max-steps", "300"]
    killed = subprocess.run(list(map(str, argv)), capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    newest = RunDir(out).checkpoints()[-1]
    assert newest.step == (40 if rename == 8 else 20)  # the JSON's rename is the commit point
    ckpt.load_tensors(newest)  # verified by checksum
    resumed = run_cli("train", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    assert not list(out.rglob(".tmp-*"))
    assert_same_run(straight, out)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_save_and_say_how_to_resume(tmp_path, anna_50k, signum, code):
    out = tmp_path / "run"
    process = start("train", anna_50k, "--out", out, *FLAGS, "--max-steps", "100000")
    wait_for_checkpoint(out, 20, process)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert f"resume with: charrnn train --resume {out}" in stdout
    assert "Traceback" not in stderr
    newest = RunDir(out).checkpoints()[-1]
    assert f"stopped by {signum.name} at step {newest.step}" in stdout
    assert newest.step >= 20


def test_a_second_trainer_on_the_same_run_is_refused(tmp_path, anna_50k):
    out = tmp_path / "run"
    process = start("train", anna_50k, "--out", out, *FLAGS, "--max-steps", "100000")
    try:
        wait_for_checkpoint(out, 20, process)
        second = run_cli("train", "--resume", out, "--max-steps", "200000")
        assert second.returncode == 1
        assert f"in use by another charrnn train (pid {process.pid})" in second.stderr
        again = run_cli("train", anna_50k, "--out", out)
        assert again.returncode == 1 and "already holds a run" in again.stderr
    finally:
        process.terminate()
        process.communicate(timeout=60)
    assert run_cli("train", "--resume", out, "--max-steps", str(RunDir(out).checkpoints()[-1].step + 5)).returncode == 0


def _limit_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_full_disk_stops_with_a_message_and_keeps_the_previous_checkpoint(tmp_path, anna_50k):
    out = tmp_path / "run"
    assert run_cli("train", anna_50k, "--out", out, *FLAGS, "--max-steps", "20").returncode == 0
    before = RunDir(out).checkpoints()[-1]
    full = run_cli("train", "--resume", out, "--max-steps", "40", preexec_fn=_limit_file_size(64 * 1024))
    assert full.returncode == 1
    assert "could not save checkpoint step-000040" in full.stderr and "disk full" in full.stderr
    assert "Traceback" not in full.stderr
    assert RunDir(out).checkpoints()[-1].step == 20
    ckpt.load_tensors(before)
    assert not list(out.rglob(".tmp-*"))
    assert run_cli("train", "--resume", out, "--max-steps", "40").returncode == 0


def test_damaged_newest_checkpoint_is_named_with_the_newest_good_one(tmp_path, anna_50k):
    out = tmp_path / "run"
    assert run_cli("train", anna_50k, "--out", out, *FLAGS, "--max-steps", "40").returncode == 0
    newest = RunDir(out).checkpoints()[-1]
    newest.tensors_path.write_bytes(newest.tensors_path.read_bytes()[:1000])
    for argv in (["sample", out, "--checkpoint", "latest"], ["eval", out, anna_50k, "--checkpoint", "latest"]):
        result = run_cli(*argv)
        assert result.returncode == 1
        assert "step-000040" in result.stderr and "damaged" in result.stderr
        assert "newest good one" in result.stderr and "step-000020" in result.stderr
    resumed = run_cli("train", "--resume", out, "--max-steps", "60")
    assert resumed.returncode == 1 and "newest good one is step-000020" in resumed.stderr
    for path in (newest.tensors_path, newest.meta_path):
        path.unlink()
    assert run_cli("train", "--resume", out, "--max-steps", "60").returncode == 0
