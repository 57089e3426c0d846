"""`charrnn plot`: the curves of several runs, a resumed one among them, as a real image."""

import os
import shutil

import numpy as np
import pytest

import charrnn

from conftest import run_main, tiny_config

matplotlib = pytest.importorskip("matplotlib", reason="the plot extra is not installed")


def test_plot_draws_runs_of_different_lengths_and_a_resumed_one(tiny_run, anna_50k, tmp_path):
    resumed = tmp_path / "resumed"
    shutil.copytree(tiny_run, resumed)
    charrnn.resume(resumed, {"max_steps": 50}, stream=open(os.devnull, "w"))
    quiet = tmp_path / "no-val"
    charrnn.train(tiny_config(anna_50k, quiet, max_steps=10, val_fraction=0.0), stream=open(os.devnull, "w"))
    out = tmp_path / "curves.png"
    done = run_main("plot", tiny_run, resumed, quiet, "-o", out, "--x", "time", "--bpc")
    assert done.returncode == 0, done.stderr
    assert "no validation loss" in done.stdout and str(quiet) in done.stdout
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (450, 800)
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20  # lines, text and markers, not blank
    svg = tmp_path / "curves.svg"
    assert run_main("plot", resumed, "-o", svg).returncode == 0 and svg.read_text().lstrip().startswith("<?xml")


def test_plot_refuses_what_it_cannot_draw(tiny_run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "metrics.csv").write_text("step,epoch,elapsed_s,train_loss,val_loss,lr,chars_per_s\n")
    for args, needle in (
        ([empty], "no rows"),
        ([tmp_path], "no metrics.csv"),
        ([tiny_run, "-o", tmp_path / "x.jpg"], ".png or .svg"),
    ):
        done = run_main("plot", *args, "-o", tmp_path / "c.png") if "-o" not in args else run_main("plot", *args)
        assert done.returncode == 1 and needle in done.stderr, done.stderr
    assert not (tmp_path / "c.png").exists()
