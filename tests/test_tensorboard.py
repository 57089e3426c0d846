"""`--tensorboard DIR`: scalars per step, the flags with the best validation loss at the end, and a
resumed run's curves without repeated steps."""

import os

import pytest

import charrnn

from conftest import run_main, tiny_config

pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def test_tensorboard_logs_scalars_and_hparams_and_a_resume_repeats_no_step(anna_50k, tmp_path):
    board, out = tmp_path / "tb", tmp_path / "run"
    quiet = open(os.devnull, "w")
    charrnn.train(tiny_config(anna_50k, out, max_steps=20, tensorboard=str(board)), stream=quiet)
    # As if it had died just before its last checkpoint: steps 11-20 are logged, the resume starts at 10.
    for newest in (out / "checkpoints").glob("step-*20*"):
        newest.unlink()
    done = run_main("train", "--resume", out, "--max-steps", "35")
    assert done.returncode == 0, done.stderr
    events = EventAccumulator(str(board / "run"))
    events.Reload()
    steps = [e.step for e in events.Scalars("loss/train")]
    assert steps == list(range(1, 36))
    assert [e.step for e in events.Scalars("loss/validation")] == [10, 20, 30, 35]
    assert {"lr", "chars_per_s"} <= set(events.Tags()["scalars"])
    assert "hparams/best_val_loss" in events.Tags()["scalars"]
    assert "_hparams_/session_start_info" in events.Tags()["tensors"] or events.PluginTagToContent("hparams")


def test_a_missing_tensorboard_extra_is_one_line_before_anything_is_made(anna_50k, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_tensorboard)
    done = run_main("train", anna_50k, "--out", tmp_path / "r", "--tensorboard", tmp_path / "tb", "--max-steps", "1")
    assert done.returncode == 1 and "pip install -e '.[tensorboard]'" in done.stderr
    assert not (tmp_path / "r").exists()
