"""The CUDA path: training at each precision, resume, checkpoints read back on the CPU, evaluation and
sampling on the GPU agreeing with the CPU. Skipped where no GPU is (CI); `benchmarks/gpu_check.sh` runs it."""

import math
import os

import pytest
import torch

import charrnn
from charrnn.data.dataset import prepare_data
from charrnn.runs.metrics import read_metrics
from charrnn.runs.rundir import resolve_checkpoint

from conftest import tiny_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
QUIET = open(os.devnull, "w")


def latest(run_dir) -> dict[str, torch.Tensor]:
    return resolve_checkpoint(run_dir, "latest")[1]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_on_cuda_learns_and_its_checkpoint_serves_the_cpu(tmp_path, anna_50k, precision):
    config = tiny_config(anna_50k, tmp_path / "run", max_steps=60, device="cuda", precision=precision)
    result = charrnn.train(config, QUIET)
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"]) - 0.5
    assert result.val_loss is not None and math.isfinite(result.val_loss)
    assert all(t.device.type == "cpu" for t in latest(tmp_path / "run").values())
    on_cpu, on_gpu = charrnn.load(tmp_path / "run", device="cpu"), charrnn.load(tmp_path / "run", device="cuda")
    val_ids = prepare_data(config).val_ids
    cpu_loss = charrnn.evaluate(on_cpu.model, val_ids).loss
    assert charrnn.evaluate(on_gpu.model, val_ids).loss == pytest.approx(cpu_loss, rel=1e-4)
    assert cpu_loss == pytest.approx(result.val_loss, rel=1e-4)  # validation ran in fp32 whatever the precision
    # Dynamic evaluation takes gradients through cuDNN's LSTM, which refuses them in eval mode.
    cpu_dynamic = charrnn.evaluate_dynamic(on_cpu.model, val_ids[:3000]).loss
    assert charrnn.evaluate_dynamic(on_gpu.model, val_ids[:3000]).loss == pytest.approx(cpu_dynamic, rel=1e-3)
    text = on_gpu.generate("The ", 200, temperature=0.8, top_k=5, seed=3)
    assert len(text) == 200 and set(text) <= set(on_gpu.vocab.chars)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_resume_on_cuda_without_dropout_continues_bit_for_bit(tmp_path, anna_50k, precision):
    # Without dropout: cuDNN draws its dropout masks from a generator of its own that no checkpoint can hold.
    flags = dict(lr_schedule="constant", device="cuda", precision=precision, model=dict(dropout=0.0))
    charrnn.train(tiny_config(anna_50k, tmp_path / "a", max_steps=25, **flags), QUIET)
    charrnn.train(tiny_config(anna_50k, tmp_path / "b", max_steps=13, **flags), QUIET)
    assert charrnn.resume(tmp_path / "b", {"max_steps": 25}, QUIET).step == 25
    a, b = latest(tmp_path / "a"), latest(tmp_path / "b")
    assert a.keys() == b.keys()
    if precision == "fp16":
        assert {"scaler.scale", "scaler.growth_tracker"} <= a.keys()
    for key in a:
        if not key.startswith("rng."):
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_resume_on_cuda_with_dropout_continues_the_same_training(tmp_path, anna_50k):
    flags = dict(lr_schedule="constant", device="cuda")
    straight = charrnn.train(tiny_config(anna_50k, tmp_path / "a", max_steps=60, **flags), QUIET)
    charrnn.train(tiny_config(anna_50k, tmp_path / "b", max_steps=30, **flags), QUIET)
    resumed = charrnn.resume(tmp_path / "b", {"max_steps": 60}, QUIET)
    assert resumed.step == 60
    assert resumed.val_loss == pytest.approx(straight.val_loss, abs=0.05)


def test_greedy_text_is_the_same_on_the_gpu_and_the_cpu(tiny_run):
    on_cpu, on_gpu = charrnn.load(tiny_run, device="cpu"), charrnn.load(tiny_run, device="cuda")
    assert on_gpu.generate("Anna ", 40, greedy=True) == on_cpu.generate("Anna ", 40, greedy=True)


def test_a_run_started_on_the_gpu_resumes_on_the_cpu(tmp_path, anna_50k):
    charrnn.train(tiny_config(anna_50k, tmp_path / "run", max_steps=10, device="cuda"), QUIET)
    resumed = charrnn.resume(tmp_path / "run", {"max_steps": 20, "device": "cpu"}, QUIET)
    assert resumed.step == 20 and math.isfinite(resumed.train_loss)
