"""The training loop: Adam, the schedule (schedule.py), global-norm clipping, the recurrent state
carried (detached) from batch to batch and reset at each epoch and, per stream, at random windows
(batches.py says why), periodic validation and checkpoints. What a step minimises is objective.py's.

`Trainer` is handed what build.py built and knows only the run: step, validate, report, save and
restore (runner.py starts and resumes runs). What is printed and logged is `Reporter`'s.

Multi-process training would replace four calls and nothing else: `next_batch` (each rank its
streams), `stop_reason` (decided together), `save` and `report` (rank 0 alone).
"""

from __future__ import annotations

import gc
import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from ..data.batches import Batch, BatchSource
from ..data.dataset import Data
from ..errors import CharRNNError
from ..generate.evaluation import evaluate
from ..model.network import CharRNN, count_parameters
from ..runs import state
from ..runs.metrics import Reporter, RunSummary, SilentReporter, StepMetrics
from ..runs.rundir import RunDir
from . import distributed
from .config import TrainConfig
from .distill import Teachers
from .distributed import Agreement, World
from .objective import Objective
from .schedule import learning_rate
from .tensorboard import TensorBoardLog

SIGNALS = ("SIGINT", "SIGTERM")
FIRST_SAVE_S = 30.0  # a new run can be sampled within half a minute, not only at step save_every


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int
    stopped_by: str  # max_steps | epochs | time_budget | patience | SIGINT | SIGTERM
    train_loss: float | None
    val_loss: float | None
    checkpoint: Path | None

    @property
    def exit_code(self) -> int:
        return {"SIGINT": 130, "SIGTERM": 143}.get(self.stopped_by, 0)


class StopSignals:
    """Turns SIGINT/SIGTERM into a request to stop after the current step (main thread only)."""

    def __init__(self):
        self.received: str | None = None

    @contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for signum in previous:
            signal.signal(signum, self._handle)
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _handle(self, signum, _frame):
        if self.received == "SIGINT" and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C means now
        self.received = signal.Signals(signum).name


@dataclass(frozen=True)
class Setup:
    """Where a trainer runs: its device, its process group and what the ranks agree through."""

    world: World
    device: torch.device
    agreement: Agreement
    autocast_dtype: torch.dtype | None  # bf16/fp16 autocast, or None for fp32
    ddp: DistributedDataParallel | None  # the model wrapped for torchrun, or None alone
    teachers: Teachers | None = None  # --teacher: the runs distilled from


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        parts: state.TrainingParts,
        data: Data,
        setup: Setup,
        run_dir: RunDir | None = None,
        stream=None,
    ):
        """A trainer of built `parts` (build.py builds them): it steps, validates, reports and saves into
        `run_dir` (None: a trainer that only steps, as the budget's probe times one)."""
        self.config, self.parts, self.data, self.stream = config, parts, data, stream
        self.world, self.device, self.agreement = setup.world, setup.device, setup.agreement
        self.autocast_dtype, self.ddp = setup.autocast_dtype, setup.ddp
        self.run_dir = run_dir
        self.objective = Objective(config, parts.model, setup.teachers)
        self.rows = config.batch_size // self.world.size  # the streams this process carries
        self.carried = self.objective.initial_state(self.rows)
        self.clock = 0.0  # rank 0's training seconds as of the last step, which every rank's schedule reads
        self.step = 0
        self.elapsed_prior = 0.0  # training seconds spent before this process (resumed runs)
        self.val_loss: float | None = None
        self.val_step = -1  # the step at which val_loss was measured
        self.best_val: float | None = None
        self.train_loss_ema: float | None = None
        self.train_loss_at_best: float | None = None  # tells a diverging run from an overfitting one at the end
        self.bad_validations = 0  # validations in a row without a new best (--patience)
        self.last_seconds: dict[str, float] = {}  # what the last validation and the last save took
        self.last_save_clock = 0.0
        self.saved = False  # whether this run has a checkpoint (the first is due sooner)
        self.step_in_run = 0  # steps taken by this process
        self.report: Reporter | None = None
        self.notes: list[str] = []  # warnings to print at the start (a resume's)

    @property
    def model(self) -> CharRNN:
        return self.parts.model

    @property
    def batches(self) -> BatchSource:
        return self.parts.batches

    def release_ddp(self) -> None:
        """Frees DistributedDataParallel while the process group and the interpreter are whole. It sits
        in a reference cycle, so it would otherwise outlive the group, and a reducer collected as the
        interpreter shuts down can abort a rank after a finished run."""
        if self.ddp is not None:
            self.ddp = None
            gc.collect()

    # -- the run ----------------------------------------------------------------------------------

    def run(self, signals: StopSignals, resumed: bool) -> TrainResult:
        config = self.config
        self._open_report(resumed)
        start = time.perf_counter() - self.elapsed_prior  # the clock reads the run's training seconds
        self.clock = self.last_save_clock = self.elapsed_prior
        self.saved = resumed
        try:
            while True:
                step_start = time.perf_counter() - start if not self.world.distributed else self.clock
                lr = learning_rate(config, self.step, step_start, self.batches.windows_per_epoch)
                began = time.perf_counter()
                loss, chars = self.train_step(lr)
                elapsed = time.perf_counter() - start
                ahead = self._time_ahead(time.perf_counter() - began, chars, elapsed)
                loss, self.clock, signals.received, finite, ahead = self.agreement.step(
                    loss, elapsed, signals.received, ahead
                )
                if not finite:
                    raise self._non_finite("loss")
                chars_per_s = chars * self.world.size / (time.perf_counter() - start - step_start)
                reason = self.stop_reason(self.clock, signals, ahead)
                clock_due = self.save_due(self.clock)
                validate = (
                    self.step % config.eval_every == 0 or clock_due or (reason is not None and reason not in SIGNALS)
                )
                val = self.measured(self.validate, "validate") if validate else None
                reason = reason or self.patience_spent()
                self.report.row(self._row(loss, val, lr, chars_per_s, time.perf_counter() - start))
                if self.step % config.save_every == 0 or clock_due or reason is not None:
                    self.report.flush()
                    self.measured(self.save, "save", time.perf_counter() - start, reason)
                    self.last_save_clock, self.saved = self.clock, True
                if reason is not None:
                    break
        finally:
            self.report.close()
        return self._finish(reason)

    def save_due(self, clock: float) -> bool:
        """Whether the clock says to checkpoint now: FIRST_SAVE_S into a new run, then every save_interval."""
        interval = self.config.save_interval
        if not interval:
            return False
        return clock - self.last_save_clock >= (interval if self.saved else min(interval, FIRST_SAVE_S))

    def _time_ahead(self, step_seconds: float, chars_per_step: int, clock: float) -> float:
        """Seconds from `clock` that what is due after this step, another step and the run's end would take
        (rank 0's figure is the one agreed)."""
        validate, save = self._end_seconds(chars_per_step)
        timed = self.save_due(clock)
        validate_now = timed or self.step % self.config.eval_every == 0
        save_now = timed or self.step % self.config.save_every == 0
        return validate * validate_now + save * save_now + step_seconds + validate + save

    def measured(self, call, name: str, *args):
        """`call(*args)`, its seconds kept as `name`'s last (the run's end is estimated from them)."""
        began = time.perf_counter()
        result = call(*args)
        self.last_seconds[name] = time.perf_counter() - began
        return result

    def _end_seconds(self, chars_per_step: int) -> tuple[float, float]:
        """What a validation and a checkpoint will take: as long as the last of each took, or, before any
        validation, as long as training on half the validation text would (reading costs about a third)."""
        validate = self.last_seconds.get("validate")
        if validate is None:
            seconds_per_char = (self.clock - self.elapsed_prior) / max(1, self.step_in_run * chars_per_step)
            validate = len(self.data.val_ids) * seconds_per_char / 2
        return validate, self.last_seconds.get("save", 0.0)

    def _open_report(self, resumed: bool) -> None:
        config, data = self.config, self.data
        if not self.world.is_main:
            self.report = SilentReporter()
            return
        board = None
        if config.tensorboard:
            board = TensorBoardLog(config.tensorboard, self.run_dir.path.name, config.flat(), self.step)
        self.report = Reporter(
            self.run_dir.metrics_file,
            config.max_steps,
            self.step,
            config.eval_every,
            resumed,
            self.stream,
            board,
            config.time_budget,
        )
        verb = f"resuming at step {self.step}" if resumed else "training"
        params = count_parameters(self.model)
        self.report.start(
            verb, params, len(data.train_ids), len(data.val_ids), len(data.vocab), self.device, data.vocab.symbol
        )
        for note in self.notes:
            self.report.message(note)

    def next_batch(self) -> Batch:
        return self.batches.next_batch()

    def stop_reason(self, elapsed: float, signals: StopSignals, ahead: float = 0.0) -> str | None:
        """Why to stop after this step, if so; `ahead` is the seconds another step and the end would take,
        which must fit in the time budget too."""
        config = self.config
        if signals.received:
            return signals.received
        if config.max_steps and self.step >= config.max_steps:
            return "max_steps"
        if config.epochs and self.batches.epoch >= config.epochs:
            return "epochs"
        if config.time_budget and elapsed + ahead >= config.time_budget:
            return "time_budget"
        return None

    def patience_spent(self) -> str | None:
        patience = self.config.patience
        return "patience" if patience and self.bad_validations >= patience else None

    # -- one step ---------------------------------------------------------------------------------

    def train_step(self, lr: float) -> tuple[float, int]:
        """One batch: forward, backward, clip, Adam. Returns the loss and the characters it covered."""
        model, optimizer, scaler = self.model, self.parts.optimizer, self.parts.scaler
        batch = self.next_batch()
        if batch.starts_epoch:
            self.carried = self.objective.initial_state(self.rows)
        elif batch.resets is not None:
            keep = (~batch.resets).to(self.carried[0].dtype)[None, :, None]
            self.carried = tuple(s * keep for s in self.carried)
        loss, carried = self.forward_loss(batch)
        loss_value = loss.item()
        if not math.isfinite(loss_value) and not self.world.distributed:  # under torchrun: decided together
            raise self._non_finite("loss")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if self.config.grad_clip > 0:
            scaler.unscale_(optimizer)
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), self.config.grad_clip)
            # With fp16 an overflow is expected now and then: the scaler skips that step and scales down.
            if not torch.isfinite(norm) and not scaler.is_enabled():
                raise self._non_finite("gradient")
        for group in optimizer.param_groups:
            group["lr"] = lr
        scaler.step(optimizer)
        scaler.update()
        if self.parts.average is not None:
            self.parts.average.update_parameters(model)
        self.carried = tuple(s.detach() for s in carried)
        self.step += 1
        self.step_in_run += 1
        self.train_loss_ema = (
            loss_value if self.train_loss_ema is None else 0.95 * self.train_loss_ema + 0.05 * loss_value
        )
        return loss_value, batch.targets.numel()

    def forward_loss(self, batch: Batch) -> tuple[torch.Tensor, tuple]:
        """The objective's loss on the batch from the carried state, in autocast's precision if any."""
        with torch.autocast(self.device.type, self.autocast_dtype, enabled=self.autocast_dtype is not None):
            return self.objective.loss(self.ddp or self.model, batch, self.carried)

    def _non_finite(self, what: str) -> CharRNNError:
        good = self.run_dir.checkpoints()
        kept = f"; the last good checkpoint is {good[-1].tensors_path}" if good else ""
        return CharRNNError(
            f"{what} became NaN or infinite at step {self.step + 1}; stopped without saving the bad weights{kept}. "
            "Try a lower --lr or --grad-clip"
        )

    # -- validation, rows, the end ----------------------------------------------------------------

    def validate(self) -> float | None:
        if len(self.data.val_ids) < 2:
            return None
        share = (self.world.rank, self.world.size)
        result = evaluate(self.parts.inference_model, self.data.val_ids, share=share, total=self.agreement.total)
        self.val_loss, self.val_step = result.loss, self.step
        if self.best_val is None or self.val_loss < self.best_val:
            self.best_val, self.train_loss_at_best = self.val_loss, self.train_loss_ema
            self.bad_validations = 0
        else:
            self.bad_validations += 1
        return self.val_loss

    def _epoch(self) -> float:
        return self.batches.epoch + self.batches.window / self.batches.windows_per_epoch

    def _row(self, loss, val, lr, chars_per_s, elapsed) -> StepMetrics:
        return StepMetrics(self.step, self._epoch(), elapsed, loss, val, lr, chars_per_s)

    def _finish(self, reason: str) -> TrainResult:
        latest = self.run_dir.checkpoints()
        path = latest[-1].tensors_path if latest else None
        losses = (self.val_loss, self.best_val, self.train_loss_ema, self.train_loss_at_best)
        self.report.finish(RunSummary(self.run_dir.path, self.step, reason, path, *losses))
        return TrainResult(self.run_dir.path, self.step, reason, self.train_loss_ema, self.val_loss, path)

    # -- checkpoints --------------------------------------------------------------------------------

    def save(self, elapsed: float, stopped_by: str | None = None) -> None:
        """Rank 0 writes the whole run's state: every rank's streams and generator, gathered first (so a
        peer lost during the gather leaves the newest checkpoint as it was)."""
        carried = tuple(self.agreement.gather_rows(s) for s in self.carried)
        rank_rngs = self.agreement.gather_bytes(torch.get_rng_state())
        if not self.world.is_main:
            return
        tensors, packed = state.pack(self.parts, carried)
        if self.world.distributed:
            tensors.update(state.pack_ranks(rank_rngs, self.model.weight_drop_generator))
        meta = {
            "step": self.step,
            "epoch": self._epoch(),
            "train_loss": self.train_loss_ema,
            "val_loss": self.val_loss if self.val_step == self.step else None,
            "best_val_loss": self.best_val,
            "train_loss_at_best": self.train_loss_at_best,
            "elapsed_s": elapsed,
            "stopped_by": stopped_by,  # why the run ended here (None: a periodic checkpoint); `charrnn runs` reads it
            "bad_validations": self.bad_validations,
            "world_size": self.world.size,
            **packed,
            "model": self.model.config.to_json(),
            "vocab": self.data.vocab.to_json(),
        }
        self.run_dir.save(tensors, meta, self.config.keep)

    def restore(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        carried = state.unpack(self.parts, tensors, meta)
        self.carried = tuple(s[:, self.world.rank :: self.world.size].contiguous() for s in carried)
        if self.world.distributed:
            self._restore_rank_generators(meta, tensors)
        self.step = int(meta["step"])
        self.elapsed_prior = float(meta["elapsed_s"])
        self.val_loss = meta.get("val_loss")
        self.val_step = self.step if self.val_loss is not None else -1
        self.best_val = meta.get("best_val_loss")
        self.train_loss_ema = meta.get("train_loss")
        self.train_loss_at_best = meta.get("train_loss_at_best")
        self.bad_validations = int(meta.get("bad_validations", 0))

    def _restore_rank_generators(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        """At the saved world size each rank takes its own generator back (the run goes on bit for bit);
        at another, ranks past 0 draw afresh from the seed, the rank and the step (the same training)."""
        saved = state.rank_generator(tensors, self.world.rank)
        if meta.get("world_size") == self.world.size and saved is not None:
            torch.set_rng_state(saved)
        elif self.world.rank:
            torch.manual_seed(distributed.rank_seed(self.config.seed + int(meta["step"]), self.world.rank))
        shared = state.weight_drop_generator(tensors)
        if shared is not None and self.model.weight_drop_generator is not None:
            self.model.weight_drop_generator.set_state(shared)
