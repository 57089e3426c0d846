import copy
import io
import os
import time

import pytest
import torch

import charrnn
from charrnn.data.dataset import prepare_data
from charrnn.errors import CharRNNError
from charrnn.model import devices
from charrnn.runs.metrics import COLUMNS, read_metrics, rising_validation_hint
from charrnn.runs.rundir import RunDir, resolve_checkpoint
from charrnn.training.build import build_trainer
from charrnn.training.config import TrainConfig
from charrnn.training.trainer import Trainer

from conftest import tiny_config

QUIET = open(os.devnull, "w")
needs_bf16 = pytest.mark.skipif(
    not devices.cpu_bf16_lstm_available(), reason=f"no bf16 LSTM on this CPU (oneDNN sees {devices.onednn_isa()})"
)


def weights(run_dir, which="latest"):
    return resolve_checkpoint(run_dir, which)[1]


def poison_loss_at(monkeypatch, step: int) -> None:
    """Make the loss of training step `step` NaN, as a diverging run's would be."""
    real = Trainer.forward_loss

    def poisoned(self, batch):
        loss, carried = real(self, batch)
        return (loss * float("nan") if self.step + 1 == step else loss), carried

    monkeypatch.setattr(Trainer, "forward_loss", poisoned)


def test_training_lowers_the_loss_and_writes_a_row_per_step(tiny_run):
    rows = read_metrics(tiny_run / "metrics.csv")
    assert tuple(rows[0]) == COLUMNS
    assert [int(r["step"]) for r in rows] == list(range(1, 31))
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"]) - 0.5
    assert [r["step"] for r in rows if r["val_loss"]] == ["10", "20", "30"]
    assert [c.step for c in RunDir(tiny_run).checkpoints()] == [10, 20, 30]


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"ema": 0.9},
        pytest.param({"precision": "bf16"}, marks=needs_bf16),
        {"model": {"weight_drop": 0.3}},
        {"shift_epochs": True, "seq_len": 1000},  # 6 windows an epoch: the resume lands in the third epoch
        {"reset_rate": 0.3},
    ],
    ids=["plain", "ema", "bf16", "weight-drop", "shift-epochs", "resets"],
)
def test_resume_continues_bit_for_bit(tmp_path, anna_50k, variant):
    # A constant schedule so that the first leg's --max-steps does not change its learning rates.
    flags = dict(lr_schedule="constant", **variant)
    straight = charrnn.train(tiny_config(anna_50k, tmp_path / "a", max_steps=25, **flags), QUIET)
    charrnn.train(tiny_config(anna_50k, tmp_path / "b", max_steps=13, **flags), QUIET)
    resumed = charrnn.resume(tmp_path / "b", {"max_steps": 25}, QUIET)
    assert straight.step == resumed.step == 25
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows_a, rows_b = read_metrics(tmp_path / "a" / "metrics.csv"), read_metrics(tmp_path / "b" / "metrics.csv")
    assert [(r["step"], r["train_loss"]) for r in rows_a] == [(r["step"], r["train_loss"]) for r in rows_b]
    # The same validations, and one more in b: where its first leg stopped.
    validations_b = [(r["step"], r["val_loss"]) for r in rows_b if r["val_loss"]]
    assert [step for step, _ in validations_b if step not in ("10", "20")] == ["13", "25"]
    assert [(r["step"], r["val_loss"]) for r in rows_a if r["val_loss"]] == [v for v in validations_b if v[0] != "13"]


def test_the_validation_at_the_stop_is_in_the_metrics(tmp_path, anna_50k):
    result = charrnn.train(tiny_config(anna_50k, tmp_path / "run", max_steps=13), QUIET)
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 14))
    assert [r["step"] for r in rows if r["val_loss"]] == ["10", "13"]
    assert float(rows[-1]["val_loss"]) == pytest.approx(result.val_loss, abs=1e-6)


def test_shift_epochs_seeds_the_batch_layout(tmp_path, anna_50k):
    for shift, seed in [(True, 99), (False, None)]:
        config = tiny_config(anna_50k, tmp_path / "run", seed=99, shift_epochs=shift)
        assert build_trainer(config, prepare_data(config), tmp_path, stream=QUIET).batches.offset_seed == seed


def test_moving_average_starts_as_a_mean_then_decays(tmp_path, anna_50k):
    config = tiny_config(anna_50k, tmp_path / "run", max_steps=6, ema=0.6)
    trainer = build_trainer(config, prepare_data(config), tmp_path, stream=QUIET)
    expected = None
    for step in range(6):
        trainer.train_step(config.lr)
        current = [p.detach().clone() for p in trainer.model.parameters()]
        weight = max(1 / (step + 1), 1 - config.ema)  # 1, 1/2, 1/3, then 0.4 each step
        expected = (
            current if expected is None else [e + (c - e) * weight for e, c in zip(expected, current, strict=True)]
        )
    for got, want, trained in zip(
        trainer.parts.inference_model.parameters(), expected, trainer.model.parameters(), strict=True
    ):
        torch.testing.assert_close(got, want)
        assert not torch.equal(got, trained)
    trainer.save(0.0)
    sampler = charrnn.load(tmp_path, "latest")  # sampling takes the average
    for got, want in zip(sampler.model.parameters(), expected, strict=True):
        torch.testing.assert_close(got, want)


def test_a_step_updates_the_weights_as_plain_adam_does(tmp_path, anna_50k):
    """The trainer's Adam is the fused one; it must take the step torch's plain Adam takes with the run's
    lr and betas, from the same (clipped) gradients."""
    config = tiny_config(anna_50k, tmp_path / "run", adam_beta2=0.95, grad_clip=0.5)
    trainer = build_trainer(config, prepare_data(config), tmp_path, stream=QUIET)
    plain_model = copy.deepcopy(trainer.model)
    plain = torch.optim.Adam(plain_model.parameters(), lr=3e-3, betas=(0.9, 0.95), foreach=False)
    for _ in range(3):
        trainer.train_step(3e-3)
        for mine, theirs in zip(trainer.model.parameters(), plain_model.parameters(), strict=True):
            theirs.grad = mine.grad.clone()
        plain.step()
        for mine, theirs in zip(trainer.model.parameters(), plain_model.parameters(), strict=True):
            torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
            theirs.data.copy_(mine)  # the next step starts from the same weights


@needs_bf16
def test_bf16_autocast_trains_fp32_weights_close_to_the_fp32_run(tmp_path, anna_50k):
    losses = {}
    for precision in ("fp32", "bf16"):
        config = tiny_config(anna_50k, tmp_path / precision, max_steps=40, precision=precision)
        trainer = build_trainer(config, prepare_data(config), tmp_path, stream=QUIET)
        losses[precision] = [trainer.train_step(config.lr)[0] for _ in range(40)]
        assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    fp32, bf16 = losses["fp32"], losses["bf16"]
    assert fp32 != bf16  # the forward pass really ran in bf16
    assert bf16[-1] < bf16[0] - 0.5
    assert abs(bf16[-1] - fp32[-1]) < 0.05


def test_fp16_without_a_gpu_is_refused_before_anything_is_written(tmp_path, anna_50k):
    with pytest.raises(CharRNNError, match=r"precision fp16 \(--precision\) runs on cuda, not cpu"):
        charrnn.train(tiny_config(anna_50k, tmp_path / "run", max_steps=5, precision="fp16", device="cpu"), QUIET)
    assert not (tmp_path / "run").exists()


def test_resume_refuses_changes_that_alter_the_model(tmp_path, tiny_run):
    for change in ({"hidden": 64}, {"cell": "gru"}, {"batch_size": 3}, {"lr": 0.5}):
        with pytest.raises(CharRNNError, match="cannot change"):
            charrnn.resume(tiny_run, change, QUIET)


def test_new_stop_flags_replace_the_old_ones():
    config = TrainConfig(texts=("x",), time_budget=60)
    changed = config.with_changes({"max_steps": 100})
    assert (changed.max_steps, changed.time_budget, changed.epochs) == (100, None, None)
    assert config.with_changes({"eval_every": 5}).time_budget == 60


def test_a_finished_run_says_how_to_go_on(tiny_run):
    with pytest.raises(CharRNNError, match=r"already finished at step 30.*--max-steps"):
        charrnn.resume(tiny_run, {}, QUIET)


def test_training_into_an_existing_run_is_refused(tiny_run, anna_50k):
    with pytest.raises(CharRNNError, match="already holds a run"):
        charrnn.train(tiny_config(anna_50k, tiny_run, max_steps=5), QUIET)


def test_non_finite_loss_stops_without_saving_bad_weights(tmp_path, anna_50k, monkeypatch):
    poison_loss_at(monkeypatch, 15)
    out = tmp_path / "nan"
    with pytest.raises(CharRNNError, match=r"^loss became NaN or infinite at step 15.*step-000010.*lower --lr"):
        charrnn.train(tiny_config(anna_50k, out, max_steps=30), QUIET)
    assert [c.step for c in RunDir(out).checkpoints()] == [10]
    assert all(torch.isfinite(t).all() for t in weights(out).values() if t.is_floating_point())


def test_text_too_short_says_how_long_it_must_be(tmp_path):
    text = tmp_path / "short.txt"
    text.write_text("a short text, not enough for one batch\n" * 3)
    with pytest.raises(CharRNNError, match=r"need 257 \(286 in all"):
        charrnn.train(tiny_config(text, tmp_path / "out", max_steps=5), QUIET)
    assert not (tmp_path / "out").exists()


def test_time_budget_and_epochs_stop_the_run(tmp_path, anna_50k):
    by_time = charrnn.train(tiny_config(anna_50k, tmp_path / "t", time_budget=1.0), QUIET)
    assert by_time.stopped_by == "time_budget"
    by_epochs = charrnn.train(tiny_config(anna_50k, tmp_path / "e", epochs=1, batch_size=64, seq_len=200), QUIET)
    assert by_epochs.stopped_by == "epochs" and by_epochs.step == 4  # 45,000 chars / 64 streams = 703 -> 4 windows


def test_default_stop_is_a_time_budget():
    assert TrainConfig(texts=("x",)).time_budget == 300
    assert TrainConfig(texts=("x",), max_steps=10).time_budget is None


@pytest.mark.parametrize(
    "field, value",
    [
        ("batch_size", 0),
        ("seq_len", -1),
        ("lr", 0),
        ("val_fraction", 1.0),
        ("lr_schedule", "step"),
        ("device", "tpu"),
        ("ema", 1.0),
        ("ema", -0.5),
        ("adam_beta2", 1.0),
        ("precision", "fp8"),
    ],
)
def test_bad_training_flags(field, value):
    with pytest.raises(CharRNNError, match="--" + field.replace("_", "-")):
        TrainConfig(texts=("x",), **{field: value})


def test_a_run_that_died_before_its_first_checkpoint_can_be_started_again(tmp_path, anna_50k, monkeypatch):
    out = tmp_path / "early"
    poison_loss_at(monkeypatch, 3)
    with pytest.raises(CharRNNError):
        charrnn.train(tiny_config(anna_50k, out, max_steps=30), QUIET)
    monkeypatch.undo()
    with pytest.raises(CharRNNError, match="no checkpoint to resume from; start it again"):
        charrnn.resume(out, {}, QUIET)
    assert charrnn.train(tiny_config(anna_50k, out, max_steps=12), QUIET).step == 12
    assert [int(r["step"]) for r in read_metrics(out / "metrics.csv")] == list(range(1, 13))


def test_rising_validation_hint_only_when_validation_rose_from_its_best():
    # The old hint fired on any 15% gap between training and validation loss, which a wide model shows while
    # still improving: the default run's own end got it.
    assert rising_validation_hint(1.2887, 1.2887) is None
    assert rising_validation_hint(1.30, 1.2976) is None  # within 1%: noise, not a trend
    assert rising_validation_hint(None, None) is None
    hint = rising_validation_hint(1.5586, 1.4951)
    assert hint and "1.4951" in hint and "1.5586" in hint and "--dropout" in hint
    falling_training = rising_validation_hint(1.5586, 1.4951, train_loss=1.10, train_loss_at_best=1.35)
    assert "overfitting" in falling_training and "--dropout" in falling_training


def test_rising_validation_with_rising_training_loss_is_called_divergence():
    # An hour of 1x768 with weight drop 0.3 in bf16 at lr ~3.5e-3: training loss ~1.3 at the best validation
    # (1.3365, step 4,000), then 2.5 by step 10,000 and validation 2.19. "Raise --dropout" would be wrong there.
    hint = rising_validation_hint(2.1886, 1.3365, train_loss=2.55, train_loss_at_best=1.30)
    assert hint and "diverged" in hint and "--lr" in hint and "--dropout" not in hint
    assert "overfitting" in rising_validation_hint(2.1886, 1.3365, train_loss=1.40, train_loss_at_best=1.30)


def test_validation_remembers_the_training_loss_at_its_best(tmp_path, anna_50k):
    config = tiny_config(anna_50k, tmp_path / "run", max_steps=4)
    trainer = build_trainer(config, prepare_data(config), tmp_path, stream=QUIET)
    trainer.train_loss_ema = 1.5
    trainer.validate()
    assert trainer.train_loss_at_best == 1.5 and trainer.best_val == trainer.val_loss
    trainer.best_val = trainer.val_loss - 1.0  # an earlier, better best: this validation is not a new one
    trainer.train_loss_ema = 2.5
    trainer.validate()
    assert trainer.train_loss_at_best == 1.5


def slow_steps(monkeypatch, seconds: float) -> None:
    """Every training step takes at least `seconds`, as on a slow machine."""
    real = Trainer.train_step

    def slow(self, lr):
        time.sleep(seconds)
        return real(self, lr)

    monkeypatch.setattr(Trainer, "train_step", slow)


def test_the_last_validation_and_save_fit_inside_the_time_budget(monkeypatch, tmp_path, anna_50k):
    real_validate = Trainer.validate

    def slow_validate(self):  # a validation that costs a fifth of the budget
        time.sleep(1.0)
        return real_validate(self)

    monkeypatch.setattr(Trainer, "validate", slow_validate)
    slow_steps(monkeypatch, 0.02)
    config = tiny_config(anna_50k, tmp_path / "run", time_budget=5.0, save_interval=1.5, eval_every=40)
    started = time.perf_counter()
    result = charrnn.train(config, QUIET)
    wall = time.perf_counter() - started
    assert result.stopped_by == "time_budget"
    final = RunDir(tmp_path / "run").checkpoints()[-1]
    assert final.meta["val_loss"] is not None and 3.0 < final.meta["elapsed_s"] <= 5.0, final.meta["elapsed_s"]
    assert wall < 5.0 + 1.0  # reading the text and building the model come on top, and little else


def test_a_new_run_checkpoints_by_time_before_its_first_save_every(monkeypatch, tmp_path, anna_50k):
    slow_steps(monkeypatch, 0.03)
    config = tiny_config(anna_50k, tmp_path / "run", max_steps=30, save_every=10**6, eval_every=10**6,
                         save_interval=0.25)  # fmt: skip
    charrnn.train(config, QUIET)
    steps = [(c.step, c.val_loss) for c in RunDir(tmp_path / "run").checkpoints()]
    assert len(steps) >= 3 and steps[-1][0] == 30, steps
    assert all(val is not None for _, val in steps)  # each validated: `best` means something from the first
    off = tiny_config(anna_50k, tmp_path / "off", max_steps=12, save_every=10**6, eval_every=10**6, save_interval=0)
    charrnn.train(off, QUIET)
    assert [c.step for c in RunDir(tmp_path / "off").checkpoints()] == [12]


def test_a_new_runs_first_timed_checkpoint_comes_sooner_than_the_interval(tmp_path, anna_50k):
    config = tiny_config(anna_50k, tmp_path / "run", save_interval=300)
    trainer = build_trainer(config, prepare_data(config), tmp_path, stream=QUIET)
    assert not trainer.save_due(29.0) and trainer.save_due(30.0)
    trainer.saved, trainer.last_save_clock = True, 30.0
    assert not trainer.save_due(300.0) and trainer.save_due(330.0)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_each_validation_keeps_its_line_and_a_budget_shows_time_left(tmp_path):
    from charrnn.runs.metrics import Reporter, StepMetrics

    screen = Terminal()
    reporter = Reporter(tmp_path / "metrics.csv", None, 0, 10, False, screen, time_budget=300)
    reporter.row(StepMetrics(9, 0.1, 64.6, 2.0, None, 1e-3, 1000.0))
    reporter.row(StepMetrics(10, 0.1, 65.0, 2.0, 1.9, 1e-3, 1000.0))
    reporter.row(StepMetrics(11, 0.1, 65.4, 2.0, None, 1e-3, 1000.0))
    reporter.close()
    lines = [line.split("\r")[-1] for line in screen.getvalue().split("\n")]
    assert any(line.startswith("epoch 0.10 step 10 |") and "val 1.9000" in line for line in lines), lines
    assert "3m55s left" in screen.getvalue()


def test_the_size_hint_calls_a_small_model_small():
    from charrnn.runs.metrics import size_hint

    assert "small model" in size_hint(42_000, 1_000_000) and "reasonable" not in size_hint(42_000, 1_000_000)
    assert "reasonable" in size_hint(1_272_124, 1_786_701)  # the default model on anna.txt
    assert "overfit" in size_hint(20_000_000, 1_000_000)
