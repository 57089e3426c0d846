"""What depends on the processor: the bf16 probe and its refusal, and the environment a run records.

The refusal is checked where oneDNN cannot build a bf16 LSTM. On an AVX-512 machine that is emulated
by capping oneDNN at AVX2 (ONEDNN_MAX_CPU_ISA, read by oneDNN itself when the process starts), after
checking that the cap reproduces the failure in a plain nn.LSTM.
"""

import json
import os
import subprocess
import sys

import pytest
import torch

import charrnn
from charrnn.model import devices
from charrnn.runs.rundir import RunDir

from conftest import run_cli, run_main, tiny_config

QUIET = open(os.devnull, "w")
AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2"}
PLAIN_BF16_LSTM = """
import torch
lstm = torch.nn.LSTM(4, 5, batch_first=True)
with torch.autocast("cpu", torch.bfloat16):
    out, _ = lstm(torch.randn(2, 3, 4))
out.float().sum().backward()
"""


@pytest.fixture(scope="module")
def avx2_fails_bf16():
    """Skip unless a plain bf16 LSTM fails in a process with oneDNN capped at AVX2 (as on an AVX2-only CPU)."""
    plain = subprocess.run([sys.executable, "-c", PLAIN_BF16_LSTM], env={**os.environ, **AVX2}, capture_output=True)
    if plain.returncode == 0:
        pytest.skip("oneDNN capped at AVX2 runs a bf16 LSTM here: nothing to refuse")
    assert b"could not create a primitive descriptor" in plain.stderr


def test_the_probes_draw_nothing_from_the_random_generators():
    before = torch.get_rng_state()
    devices.cpu_bf16_lstm_available.__wrapped__()
    devices.onednn_isa.__wrapped__()
    assert torch.equal(torch.get_rng_state(), before)


def test_the_probe_agrees_with_a_real_bf16_lstm():
    plain = subprocess.run([sys.executable, "-c", PLAIN_BF16_LSTM], capture_output=True)
    assert devices.cpu_bf16_lstm_available() == (plain.returncode == 0)


def test_bf16_where_oneDNN_has_no_bf16_lstm_is_one_line_before_anything_is_made(tmp_path, anna_50k, avx2_fails_bf16):
    out = tmp_path / "run"
    result = run_cli("train", anna_50k, "--out", out, "--precision", "bf16", "--max-steps", "2", env_extra=AVX2)
    assert result.returncode == 1, result.stdout
    assert result.stderr.strip().splitlines() == [
        "charrnn: error: precision bf16 (--precision): this CPU's oneDNN cannot run a bf16 LSTM (it needs "
        "AVX-512; oneDNN sees Intel AVX2); use --precision fp32"
    ]
    assert not out.exists()


def as_bf16_run(run_dir) -> None:
    """Make a run's record say bf16, as a run trained on another machine would (its checkpoints hold nothing
    bf16-specific: weights and Adam stay fp32)."""
    record = json.loads((run_dir / "run.json").read_text())
    record["train"]["precision"] = "bf16"
    (run_dir / "run.json").write_text(json.dumps(record))


def test_a_bf16_run_resumes_here_in_fp32_with_a_warning(tmp_path, anna_50k, avx2_fails_bf16):
    out = tmp_path / "run"
    charrnn.train(tiny_config(anna_50k, out, max_steps=10), QUIET)
    as_bf16_run(out)
    refused = run_cli("train", "--resume", out, "--max-steps", "20", env_extra=AVX2)
    assert refused.returncode == 1 and "use --precision fp32" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    resumed = run_cli("train", "--resume", out, "--max-steps", "20", "--precision", "fp32", env_extra=AVX2)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming a bf16 run in fp32: this continues the training, not the same numbers" in resumed.stdout
    assert RunDir(out).read("")["train"]["precision"] == "fp32"


def test_run_json_records_the_environment_and_a_resume_elsewhere_says_so(tmp_path, anna_50k):
    out = tmp_path / "run"
    charrnn.train(tiny_config(anna_50k, out, max_steps=10), QUIET)
    environment = RunDir(out).read("")["environment"]
    assert environment == {
        "torch": torch.__version__,
        "cpu_isa": devices.onednn_isa(),
        "threads": torch.get_num_threads(),
    }
    assert run_main("info", out, "--json").stdout and json.loads(run_main("info", out, "--json").stdout)["environment"]
    same = run_main("train", "--resume", out, "--max-steps", "12")
    assert same.returncode == 0 and "not promised" not in same.stdout
    record = json.loads((out / "run.json").read_text())
    record["environment"] = {**environment, "cpu_isa": "Intel AVX2", "threads": 16}
    (out / "run.json").write_text(json.dumps(record))
    other = run_main("train", "--resume", out, "--max-steps", "14")
    assert other.returncode == 0, other.stderr
    lines = [line for line in other.stdout.splitlines() if "not promised" in line]
    assert lines == [
        f"warning: trained with torch {torch.__version__}, cpu_isa Intel AVX2, threads 16; here torch "
        f"{torch.__version__}, cpu_isa {devices.onednn_isa()}, threads {torch.get_num_threads()}: "
        "bit-for-bit equality with an unbroken run is not promised"
    ]
