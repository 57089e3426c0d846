"""`charrnn export --onnx`: the ONNX graph agrees with PyTorch, and the example samples from it alone."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import charrnn
from charrnn.model.export import export_onnx, state_names
from charrnn.model.network import CharRNN, ModelConfig

from conftest import run_main

ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
pytest.importorskip("onnx", reason="the onnx extra is not installed")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample_onnx.py"


def log_probs(logits) -> np.ndarray:
    return torch.log_softmax(torch.as_tensor(np.asarray(logits), dtype=torch.float64), dim=-1).numpy()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_onnx_matches_pytorch_for_a_window_and_for_steps_with_the_state_carried(cell, tmp_path, tiny_run):
    vocab = charrnn.load(tiny_run).vocab
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(cell=cell, hidden=24, layers=2, embed_dim=8, dropout=0.1).for_vocab(len(vocab))).eval()
    session = ort.InferenceSession(
        str(export_onnx(model, vocab, tmp_path / "m.onnx")), providers=["CPUExecutionProvider"]
    )
    names = state_names(cell)
    generator = torch.Generator().manual_seed(1)
    for batch in (1, 3):
        ids = torch.randint(0, len(vocab), (batch, 84), generator=generator)
        state = model.init_state(batch)
        feed = {n: s.numpy() for n, s in zip(names, state, strict=True)}
        with torch.inference_mode():
            want, want_state = model(ids[:, :64], state)
        got, *got_state = session.run(None, {"ids": ids[:, :64].numpy(), **feed})
        assert np.abs(log_probs(got) - log_probs(want)).max() < 1e-5
        for step in range(64, 84):  # 20 single steps, the state carried on both sides
            feed = dict(zip(names, got_state, strict=True))
            got, *got_state = session.run(None, {"ids": ids[:, step : step + 1].numpy(), **feed})
            with torch.inference_mode():
                want, want_state = model(ids[:, step : step + 1], want_state)
            assert np.abs(log_probs(got) - log_probs(want)).max() < 1e-5
        assert all(np.abs(g - w.numpy()).max() < 1e-5 for g, w in zip(got_state, want_state, strict=True))


def test_export_command_and_the_example_sample_without_torch(tiny_run, tmp_path):
    out = tmp_path / "tiny.onnx"
    done = run_main("export", tiny_run, "--onnx", out)
    assert done.returncode == 0 and "TorchScript-based" in done.stdout, done.stderr
    # The example's process may not import torch: a module that refuses to load stands in for it.
    blocker = tmp_path / "blocked"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('torch is not for this example')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    sample = subprocess.run([sys.executable, EXAMPLE, out, "--prime", "The ", "--length", "40", "--seed", "1"],
                            capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert sample.returncode == 0, sample.stderr
    assert sample.stdout.startswith("The ") and len(sample.stdout.rstrip("\n")) >= 44
    ensemble = run_main("export", tiny_run, "--with", tiny_run, "--onnx", tmp_path / "e.onnx")
    assert ensemble.returncode == 1 and "each member" in ensemble.stderr and not (tmp_path / "e.onnx").exists()
