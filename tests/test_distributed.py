"""Training on several processes with torchrun (gloo, CPU): the same training as one process, a rank
killed and the run resumed bit for bit, two nodes on loopback, and bad launches."""

import glob
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import charrnn
from charrnn.runs.checkpoint import load_tensors
from charrnn.runs.metrics import read_metrics
from charrnn.runs.rundir import RunDir

from conftest import run_main

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
FLAGS = ["--device", "cpu", "--hidden", "32", "--layers", "2", "--embed-dim", "16", "--batch-size", "8",
         "--seq-len", "32", "--lr", "1e-2", "--warmup-steps", "5", "--eval-every", "10", "--save-every", "10"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(
    *args, procs: int = 2, extra=(), timeout: float = 120, wait: bool = True, cwd=None, program=("-m", "charrnn")
):
    argv = [*TORCHRUN, "--nproc-per-node", str(procs), "--master-addr", "127.0.0.1", "--master-port",
            str(free_port()), *extra, *map(str, program), *map(str, args)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    if not wait:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


def weights(run: Path, step: int) -> dict:
    (path,) = glob.glob(str(run / "checkpoints" / f"step-{step:06d}-*.safetensors"))
    return {k: v for k, v in load_file(path).items() if k.startswith("model.")}


EXIT_PROBE = """
import gc, sys
from torch.nn.parallel import DistributedDataParallel
from charrnn.cli.main import main
gc.disable()  # a reference cycle then lives on to the interpreter's shutdown, as it can when gc does not run
code = main(sys.argv[1:])
print("DDP left:", sum(isinstance(o, DistributedDataParallel) for o in gc.get_objects()))
sys.exit(code)
"""


def test_two_processes_train_as_one_with_the_same_global_batch(anna_50k, tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(EXIT_PROBE)
    flags = [*FLAGS, "--dropout", "0", "--max-steps", "30"]
    two = torchrun("train", anna_50k, "--out", tmp_path / "two", *flags, program=[probe])
    assert two.returncode == 0, two.stdout + two.stderr
    # A DDP collected while the interpreter shuts down can abort a rank after a finished run (SIGABRT).
    assert two.stdout.count("DDP left: 0") == 2
    one = run_main("train", anna_50k, "--out", tmp_path / "one", *flags)
    assert one.returncode == 0, one.stderr
    a, b = weights(tmp_path / "one", 30), weights(tmp_path / "two", 30)
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-5
    val_one, val_two = (RunDir(tmp_path / r).checkpoints()[-1].val_loss for r in ("one", "two"))
    assert val_two == pytest.approx(val_one, abs=1e-6)
    assert two.stdout.count("done at step 30") == 1  # rank 0 alone reports


def test_with_dropout_two_processes_learn_as_one_does(anna_50k, tmp_path):
    flags = [*FLAGS, "--dropout", "0.2", "--max-steps", "40"]
    assert torchrun("train", anna_50k, "--out", tmp_path / "two", *flags).returncode == 0
    assert run_main("train", anna_50k, "--out", tmp_path / "one", *flags).returncode == 0
    one, two = (RunDir(tmp_path / r).checkpoints()[-1].val_loss for r in ("one", "two"))
    assert abs(one - two) < 0.05 and two < 3.5  # other masks, the same learning (it starts near 4.2)


def test_a_killed_rank_then_resume_ends_where_an_unbroken_run_does(anna_50k, tmp_path):
    flags = [*FLAGS, "--hidden", "96", "--dropout", "0.2", "--max-steps", "120"]
    unbroken = torchrun("train", anna_50k, "--out", tmp_path / "a", *flags)
    assert unbroken.returncode == 0, unbroken.stdout[-1500:] + unbroken.stderr[-3000:]
    broken = torchrun("train", anna_50k, "--out", tmp_path / "b", *flags, wait=False)
    deadline = time.monotonic() + 60
    while not glob.glob(str(tmp_path / "b" / "checkpoints" / "step-000020-*.json")) and time.monotonic() < deadline:
        time.sleep(0.005)
    workers = subprocess.run(["pgrep", "-P", str(broken.pid)], capture_output=True, text=True).stdout.split()
    os.kill(int(sorted(workers, key=int)[-1]), signal.SIGKILL)  # the newest worker: rank 1
    start = time.monotonic()
    output, _ = broken.communicate(timeout=90)
    assert broken.returncode != 0 and time.monotonic() - start < 60
    assert "lost the other processes" in output or "SIGKILL" in output or "Signal 9" in output, output[-2000:]
    checkpoints = RunDir(tmp_path / "b").checkpoints()
    assert 20 <= checkpoints[-1].step < 120
    for info in checkpoints:
        load_tensors(info)  # every checkpoint whole: none half-gathered after the peer died
    resumed = torchrun("train", "--resume", tmp_path / "b")
    lines = (resumed.stdout + resumed.stderr).splitlines()
    assert resumed.returncode == 0, "\n".join(line for line in lines if not line.startswith("epoch"))
    a, b = weights(tmp_path / "a", 120), weights(tmp_path / "b", 120)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The two-process checkpoint in one process: sampled, evaluated, described.
    assert len(charrnn.load(tmp_path / "b").generate("The", 20, seed=1)) == 20
    assert run_main("eval", tmp_path / "b").returncode == 0
    assert run_main("info", tmp_path / "b").returncode == 0


def test_two_nodes_on_loopback_train_one_run(anna_50k, tmp_path):
    port = free_port()
    rendezvous = ["--nnodes", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "t"]
    run = ["train", anna_50k, "--out", tmp_path / "r", *FLAGS, "--max-steps", "12"]
    nodes = [torchrun(*run, procs=1, wait=False, extra=[*rendezvous, "--node-rank", str(rank)]) for rank in (0, 1)]
    outputs = [node.communicate(timeout=120)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert RunDir(tmp_path / "r").checkpoints()[-1].step == 12
    assert sum(out.count("done at step 12") for out in outputs) == 1


def test_bad_launches_are_one_line(anna_50k, tmp_path):
    odd = torchrun("train", anna_50k, "--out", tmp_path / "r", *FLAGS, "--batch-size", "7", "--max-steps", "2")
    assert odd.returncode != 0 and "does not split over 2 processes" in odd.stdout + odd.stderr
    assert not (tmp_path / "r").exists()
    nccl = torchrun("train", anna_50k, "--out", tmp_path / "n", *FLAGS, "--dist-backend", "nccl", "--max-steps", "2")
    assert nccl.returncode != 0 and "nccl needs --device cuda" in nccl.stdout + nccl.stderr
    if not torch.cuda.is_available():
        gpu = torchrun("train", anna_50k, "--out", tmp_path / "g", *FLAGS[2:], "--device", "cuda", "--max-steps", "2")
        assert gpu.returncode != 0 and "no CUDA GPU" in gpu.stdout + gpu.stderr


def test_a_restarted_worker_group_resumes_by_itself(tiny_run, anna_50k, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(tiny_run, tmp_path / "run")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    config = charrnn.TrainConfig.from_json(RunDir(tmp_path / "run").read("")["train"])
    done = run_main("train", anna_50k, "--out", tmp_path / "run", "--max-steps", "30")
    assert done.returncode == 1 and "already finished at step 30" in done.stderr  # resumed, not refused
    monkeypatch.delenv("TORCHELASTIC_RESTART_COUNT")
    done = run_main("train", anna_50k, "--out", tmp_path / "run")
    assert done.returncode == 1 and "already holds a run" in done.stderr
    assert config.max_steps == 30


def test_a_resume_at_another_world_size_continues_the_training(anna_50k, tmp_path):
    flags = [*FLAGS, "--dropout", "0.1", "--max-steps", "30"]
    assert torchrun("train", anna_50k, "--out", tmp_path / "r", *flags).returncode == 0
    done = run_main("train", "--resume", tmp_path / "r", "--max-steps", "40")  # two processes, then one
    assert done.returncode == 0, done.stderr
    wider = torchrun("train", "--resume", tmp_path / "r", "--max-steps", "50")  # and two again
    assert wider.returncode == 0, wider.stdout[-2000:]
    rows = [(int(r["step"]), float(r["train_loss"])) for r in read_metrics(RunDir(tmp_path / "r").metrics_file)]
    assert [s for s, _ in rows] == list(range(1, 51))
    losses = dict(rows)
    for step in (30, 40):  # no jump where the world size changed: the state and streams carried on
        assert abs(losses[step + 1] - losses[step]) < 0.3
    assert losses[50] < losses[1] - 0.5
