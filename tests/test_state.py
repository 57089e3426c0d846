"""Packing and unpacking the training state, and a run written by format 1 resuming under this code."""

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import charrnn
from charrnn.data.batches import BatchSource
from charrnn.data.dataset import prepare_data
from charrnn.model.network import CharRNN, ModelConfig
from charrnn.runs import state
from charrnn.runs.checkpoint import load_tensors
from charrnn.runs.metrics import read_metrics
from charrnn.runs.rundir import RunDir, resolve_checkpoint
from charrnn.training.build import build_trainer
from charrnn.training.config import TrainConfig
from charrnn.training.trainer import StopSignals

FORMAT1 = Path(__file__).with_name("fixtures") / "format1"
QUIET = open(os.devnull, "w")


def parts(seed: int, scaled: bool = False) -> state.TrainingParts:
    torch.manual_seed(seed)
    model = CharRNN(ModelConfig(vocab_size=6, hidden=8, layers=2, embed_dim=4))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    batches = BatchSource(np.arange(400, dtype=np.uint8) % 6, 4, 10, torch.device("cpu"))
    return state.TrainingParts(model, optimizer, torch.amp.GradScaler("cpu", enabled=scaled), batches)


def train_a_little(p: state.TrainingParts) -> None:
    for _ in range(3):
        batch = p.batches.next_batch()
        logits, _ = p.model(batch.inputs)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 6), batch.targets.reshape(-1))
        p.optimizer.zero_grad()
        p.scaler.scale(loss).backward()
        p.scaler.step(p.optimizer)
        p.scaler.update()


def test_unpack_restores_what_pack_saved():
    source = parts(1, scaled=True)
    train_a_little(source)
    carried = tuple(torch.randn(2, 4, 8) for _ in range(2))
    tensors, meta = state.pack(source, carried)
    meta = json.loads(json.dumps(meta))  # as it comes back from the checkpoint's JSON
    target = parts(2, scaled=True)
    got = state.unpack(target, tensors, meta)
    assert all(torch.equal(a, b) for a, b in zip(got, carried, strict=True))
    for a, b in zip(source.model.state_dict().values(), target.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    moments = [(s["exp_avg"], s["exp_avg_sq"]) for s in target.optimizer.state_dict()["state"].values()]
    assert len(moments) == len(list(source.model.parameters()))
    assert target.scaler.state_dict() == source.scaler.state_dict()
    assert target.batches.state_dict() == source.batches.state_dict() == {"epoch": 0, "window": 3}
    assert torch.equal(torch.get_rng_state(), tensors["rng.torch"])


def test_the_key_layout_is_the_documented_one():
    tensors, meta = state.pack(parts(1), (torch.zeros(2, 4, 8), torch.zeros(2, 4, 8)))
    prefixes = {key.split(".")[0] for key in tensors}
    assert prefixes == {"model", "rng", "state"}  # no optimizer state before a step, no average, no scaler
    assert set(state.inference_weights(tensors)) == set(
        CharRNN(ModelConfig(6, hidden=8, layers=2, embed_dim=4)).state_dict()
    )
    assert set(meta) == {"position", "optimizer_groups"}


def test_format_1_scaler_tensors_are_read():
    source = parts(1, scaled=True)
    train_a_little(source)
    tensors, meta = state.pack(source, (torch.zeros(2, 4, 8),) * 2)
    saved = meta.pop("scaler")
    tensors["scaler.scale"] = torch.tensor(saved["scale"])
    tensors["scaler.growth_tracker"] = torch.tensor(saved["_growth_tracker"])
    target = parts(2, scaled=True)
    state.unpack(target, tensors, meta)
    assert target.scaler.state_dict() == saved


def copy_format1_run(tmp_path: Path) -> Path:
    """The committed format-1 run (trained by the code before format 2), pointed at its text's new place."""
    run, text = tmp_path / "run", tmp_path / "text.txt"
    shutil.copytree(FORMAT1 / "run", run)
    shutil.copy(FORMAT1 / "text.txt", text)
    record = json.loads((run / "run.json").read_text())
    record["train"]["texts"] = [str(text)]
    (run / "run.json").write_text(json.dumps(record))
    return run


def test_a_format_1_checkpoint_restores_the_state_this_code_reaches_itself(tmp_path):
    """Restored from the fixture's step 20, a trainer holds what this code's own trainer holds after the same
    20 steps: the trained weights, their average, Adam's moments, the carried state and the data position."""
    old = copy_format1_run(tmp_path)
    config = replace(TrainConfig.from_json(RunDir(old).read("")["train"]), out=str(tmp_path / "new"))
    (tmp_path / "new").mkdir()
    ran = build_trainer(config, prepare_data(config), tmp_path / "new", stream=QUIET)
    ran.run(StopSignals(), resumed=False)
    restored = build_trainer(config, prepare_data(config), old, stream=QUIET)
    info = RunDir(old).pick("20")
    restored.restore(info.meta, load_tensors(info))
    pairs = [(ran.model, restored.model), (ran.parts.average.module, restored.parts.average.module)]
    for a, b in pairs:
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
            torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)
    moments = [opt.state_dict()["state"] for opt in (ran.parts.optimizer, restored.parts.optimizer)]
    for index, values in moments[0].items():
        for key, value in values.items():
            torch.testing.assert_close(value, moments[1][index][key], rtol=1e-4, atol=1e-5)
    for x, y in zip(ran.carried, restored.carried, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)
    assert ran.batches.state_dict() == restored.batches.state_dict()
    assert restored.step == 20 and restored.best_val == pytest.approx(ran.best_val, abs=1e-4)


def test_a_format_1_run_samples_and_resumes_as_this_code_would_have_trained_it(tmp_path):
    old = copy_format1_run(tmp_path)
    assert RunDir(old).read("")["format"] == 1
    assert charrnn.load(old).generate("The", 20, seed=1)
    resumed = charrnn.resume(old, {"max_steps": 30}, QUIET)
    assert resumed.step == 30 and RunDir(old).read("")["format"] == charrnn.runs.checkpoint.FORMAT_VERSION
    # The same run made by this code, stopped where the fixture stopped, then resumed the same way.
    config = replace(TrainConfig.from_json(RunDir(old).read("")["train"]), out=str(tmp_path / "new"), max_steps=20)
    charrnn.train(config, QUIET)
    new_at_20 = resolve_checkpoint(tmp_path / "new", "20")[1]
    old_at_20 = resolve_checkpoint(old, "20")[1]
    assert new_at_20.keys() == old_at_20.keys()
    for key in new_at_20:  # the old code's 20 steps, to rounding (bit for bit on the machine that made them)
        torch.testing.assert_close(new_at_20[key], old_at_20[key], rtol=1e-4, atol=1e-5)
    charrnn.resume(tmp_path / "new", {"max_steps": 30}, QUIET)
    for key, value in resolve_checkpoint(tmp_path / "new", "30")[1].items():
        torch.testing.assert_close(value, resolve_checkpoint(old, "30")[1][key], rtol=1e-4, atol=1e-5)
    steps = [int(r["step"]) for r in read_metrics(old / "metrics.csv")]
    assert steps == list(range(1, 31))
