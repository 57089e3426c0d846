"""Budget-aware defaults (budget.py): the rule on constructed speeds, the probe's generators, when the choice
applies, and a real command that chooses, saves its choice and resumes without choosing again."""

import json
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import charrnn
from charrnn.cli import train as cli
from charrnn.data.dataset import prepare_data
from charrnn.model.network import parameters_of
from charrnn.training import budget
from charrnn.training.budget import SETTINGS, SHAPING_FLAGS, applies, rule
from charrnn.training.distributed import World

from conftest import run_main

ANNA_TRAIN, SHAKESPEARE_TRAIN = 1_786_701, 1_003_855  # training characters (90% of each text)
SMALL = ("artar-512", "artar-ema-512", "locked-512")  # the default 1x512 model: one step's cost
# Seconds per step the probe measured on the 2-core AMD EPYC (Zen 5) the rule was fitted on
FAST = {**dict.fromkeys(SMALL, 0.0449), "wide-896": 0.1134, "regularised-768": 0.0923}
SLOW = {name: 3 * seconds for name, seconds in FAST.items()}  # an AVX2-only CPU, about 3x slower
ZEN3 = {**dict.fromkeys(SMALL, 0.1102), "wide-896": 0.2830, "regularised-768": 0.2287}  # section 14's Zen 3


@pytest.mark.parametrize(
    "speeds, budget_s, chars, expected",
    [
        (FAST, 300, ANNA_TRAIN, "artar-ema-512"),  # 5 minutes on anna.txt: 2.4 epochs of the wide model, 6.0 of 1x512
        (FAST, 600, ANNA_TRAIN, "wide-896"),  # 10 minutes: 4.7 epochs of the wide model
        (FAST, 1800, ANNA_TRAIN, "regularised-768"),  # half an hour: 17 epochs, past the wide model's best
        (SLOW, 600, ANNA_TRAIN, "artar-ema-512"),  # the slower CPU's 10 minutes buy what 3.3 minutes buy here
        (SLOW, 1800, ANNA_TRAIN, "wide-896"),
        (FAST, 300, ANNA_TRAIN // 2, "wide-896"),  # half the text: twice the epochs
        (FAST, 300, SHAKESPEARE_TRAIN, "wide-896"),
        (FAST, 600, SHAKESPEARE_TRAIN, "wide-896"),  # the regularised model's 10.4 epochs are short of its 14
        (FAST, 60, 20_000, "regularised-768"),  # a small text is seen many times even in a minute
        (ZEN3, 600, SHAKESPEARE_TRAIN, "locked-512"),  # 3.4 epochs of the wide model (it lost), 8.7 of the 1x512
        (ZEN3, 600, ANNA_TRAIN, "artar-ema-512"),  # 4.9 epochs: the average ahead, the mask behind (section 14)
        (ZEN3, 300, ANNA_TRAIN, "artar-512"),  # 2.4 epochs: the average still lagged (section 14)
    ],
)
def test_rule_chooses_by_the_epochs_the_budget_buys(speeds, budget_s, chars, expected):
    chosen, epochs = rule(speeds, budget_s, chars)
    assert chosen.name == expected
    assert epochs["artar-512"] == pytest.approx(budget_s / speeds["artar-512"] * 32 * 50 / chars)


def test_rule_passes_over_settings_the_probe_did_not_reach():
    chosen, epochs = rule({"locked-512": 0.041}, 1800, ANNA_TRAIN)
    assert chosen.name == "locked-512" and set(epochs) == {"locked-512"}
    assert rule({}, 600, ANNA_TRAIN)[0] is SETTINGS[-1]


def test_the_settings_end_with_the_default_model_under_ar_and_tar_averaged_then_locked_for_more_passes():
    artar, averaged, locked = SETTINGS[-1], SETTINGS[-2], SETTINGS[-3]
    assert artar.flags == {"ar": 2.0, "tar": 1.0} and artar.min_epochs == 0
    assert averaged.flags == {**artar.flags, "ema": 0.999} and averaged.min_epochs > 0
    assert locked.flags == {**averaged.flags, "locked_dropout": True} and locked.min_epochs > averaged.min_epochs
    sizes = [parameters_of(charrnn.TrainConfig().with_flags(s.flags).model.for_vocab(83)) for s in SETTINGS]
    assert min(sizes[:-3]) > sizes[-3] == sizes[-2] == sizes[-1]  # the larger models come first
    assert [s.min_epochs for s in SETTINGS[:-3]] == sorted((s.min_epochs for s in SETTINGS[:-3]), reverse=True)
    for candidate in SETTINGS:
        assert set(candidate.flags) <= set(SHAPING_FLAGS)
        charrnn.TrainConfig().with_flags(candidate.flags)  # each is a valid config


def test_probe_draws_nothing_from_the_runs_generators(anna_50k):
    config = charrnn.TrainConfig(texts=(str(anna_50k),), time_budget=300, seed=3)
    data = prepare_data(config)
    torch.manual_seed(11)
    random.seed(11)
    np.random.seed(11)
    expected = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    seconds = budget.probe(config, data, limit=0.0)  # a limit of 0 probes the smallest alone
    assert list(seconds) == ["artar-512"] and seconds["artar-512"] > 0
    assert torch.equal(torch.get_rng_state(), expected[0])
    assert random.getstate() == expected[1] and np.array_equal(np.random.get_state()[1], expected[2])
    draws_after_probe = torch.rand(4)
    torch.manual_seed(11)
    assert torch.equal(draws_after_probe, torch.rand(4))


def test_the_choice_applies_only_to_a_time_budget_alone():
    base = charrnn.TrainConfig(texts=("t.txt",))
    assert applies(base)  # no stop given: the default five minutes
    assert applies(charrnn.TrainConfig(texts=("t.txt",), time_budget=600))
    assert not applies(charrnn.TrainConfig(texts=("t.txt",), time_budget=30))  # too short to probe
    assert not applies(charrnn.TrainConfig(texts=("t.txt",), max_steps=100))
    assert not applies(charrnn.TrainConfig(texts=("t.txt",), time_budget=600, epochs=3))
    assert not applies(charrnn.TrainConfig(texts=("t.txt",), time_budget=600, init_from="runs/a"))
    assert not applies(base, World(rank=0, size=2, local_rank=0))


@pytest.mark.parametrize("flag, value", [(f, "2" if f in ("layers", "hidden") else "0.5") for f in SHAPING_FLAGS])
def test_any_shaping_flag_turns_the_choice_off(monkeypatch, tmp_path, flag, value):
    asked = {}
    monkeypatch.setattr(cli, "train", lambda config, **kw: asked.update(kw) or _Done())
    value = {"cell": "gru", "batch_size": "8", "seq_len": "8", "embed_dim": "8"}.get(flag, value)
    switch = [f"--{flag.replace('_', '-')}"] + ([] if flag == "locked_dropout" else [value])  # a switch takes no value
    run_main("train", tmp_path / "t.txt", "--out", tmp_path / "r", *switch)
    assert asked["choose_for_budget"] is False
    run_main("train", tmp_path / "t.txt", "--out", tmp_path / "r", "--seed", "3", "--warmup-steps", "10")
    assert asked["choose_for_budget"] is True


def test_choose_config_refuses_a_shaping_setting(anna_50k):
    with pytest.raises(charrnn.CharRNNError, match=r"lr \(--lr\) is given"):
        charrnn.choose_config([anna_50k], 300, lr=1e-3)


def test_a_chosen_run_saves_its_choice_and_a_resume_keeps_it(anna_50k, tmp_path):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "charrnn", "train", str(anna_50k), "--out", str(out), "--time-budget", "60",
            "--save-every", "5", "--eval-every", "5", "--val-fraction", "0.05"]  # fmt: skip
    trainer = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while not list((out / "checkpoints").glob("step-*.json")) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        trainer.send_signal(signal.SIGINT)
    printed = trainer.communicate(timeout=60)[0]
    assert trainer.returncode == 130, printed
    run = json.loads((out / "run.json").read_text())
    choice = run["choice"]
    line = next(line for line in printed.splitlines() if line.startswith("budget: chose"))
    assert choice["setting"] in line and choice["command"] in line
    chosen = next(s for s in SETTINGS if s.name == choice["setting"])
    saved = charrnn.TrainConfig.from_json(run["train"])
    assert saved == saved.with_flags(chosen.flags)  # the chosen flags are what the run trains
    assert saved.time_budget == 60  # what was asked: the probe spends it too (the checkpoints' clock)
    first = min((out / "checkpoints").glob("step-*.json"))
    assert json.loads(first.read_text())["elapsed_s"] > choice["probe_seconds"]
    assert choice["probe_seconds"] > 0 and "--time-budget 1m" in choice["command"]
    assert f"chosen for a 60 s budget: {choice['setting']}" in run_main("info", out).stdout
    stopped_at = max(int(p.stem.split("-")[1]) for p in (out / "checkpoints").glob("step-*.json"))
    resumed = run_main("train", "--resume", out, "--max-steps", stopped_at + 2)
    assert resumed.returncode == 0, resumed.stderr
    assert "budget: chose" not in resumed.stdout
    again = json.loads((out / "run.json").read_text())
    assert again["choice"] == choice and again["train"]["model"] == run["train"]["model"]


class _Done:
    exit_code = 0
