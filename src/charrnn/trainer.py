"""The training loop: Adam, the schedule (schedule.py), global-norm clipping, the recurrent state
carried (detached) from batch to batch and reset at each epoch and, per stream, at random windows
(batches.py says why), periodic validation and checkpoints.

`train(config)` starts a run, `resume(run_dir, changes)` continues one exactly where its newest
checkpoint left it: weights, optimizer moments, RNG state, carried state, data position and
counters all come back (state.py), so a resumed run ends bit-for-bit where an unbroken one would on
the same machine (on CUDA only without dropout: cuDNN draws its dropout masks from a generator no
checkpoint can hold). The run directory is `RunDir`'s; what is printed and logged, `Reporter`'s.

Multi-process training would replace four calls and nothing else: `next_batch` (each rank its
streams), `stop_reason` (decided together), `save` and `report` (rank 0 alone).
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel

from . import allocator, devices, distributed, state, tensorboard
from .batches import Batch, BatchSource
from .checkpoint import CheckpointInfo, load_tensors
from .config import TrainConfig
from .dataset import Data, prepare_data
from .distributed import SINGLE, Agreement, World
from .errors import CharRNNError
from .evaluation import evaluate
from .finetune import starting_point
from .metrics import Reporter, RunSummary, SilentReporter, StepMetrics
from .model import CharRNN, count_parameters
from .rundir import RunDir
from .schedule import learning_rate
from .tensorboard import TensorBoardLog
from .vocab import Vocab

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


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        run_dir: RunDir | Path,
        data: Data,
        stream=None,
        initial_weights: dict | None = None,
        world: World = SINGLE,
    ):
        self.config, self.data, self.stream, self.world = config, data, stream, world
        self.run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.device = devices.select_device(distributed.device_for(world, config.device))
        distributed.start(world, self.device, config.dist_backend)
        self.agreement = Agreement(world, self.device)
        self.autocast_dtype = devices.autocast_dtype(config.precision, self.device, config.model.cell)
        torch.manual_seed(config.seed)
        model = CharRNN(config.model.for_vocab(len(data.vocab)))
        if initial_weights is not None:  # --init-from
            model.load_state_dict(initial_weights)
        model = model.to(self.device)
        # fused: one kernel for all parameters' updates (benchmarks/RESULTS.md)
        fused = self.device.type in ("cpu", "cuda")
        self.parts = state.TrainingParts(
            model=model,
            optimizer=torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, config.adam_beta2), fused=fused),
            # fp16's narrow range needs the loss scaled up so small gradients survive; bf16 and fp32 do not.
            scaler=torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16"),
            batches=_streams_of(
                world,
                BatchSource(
                    data.train_ids,
                    config.batch_size,
                    config.seq_len,
                    self.device,
                    config.seed if config.shift_epochs else None,
                    config.reset_rate,
                    config.seed,
                ),
            ),
            average=_moving_average(model, config.ema) if config.ema else None,
        )
        self.carried = model.init_state(config.batch_size // world.size)
        self.ddp = None
        if world.distributed:  # gradients averaged over the ranks; rank 0's weights broadcast at the start
            self.ddp = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
            if config.model.weight_drop:
                model.weight_drop_generator = torch.Generator().manual_seed(config.seed)
            if world.rank:
                torch.manual_seed(distributed.rank_seed(config.seed, world.rank))
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
                timed = self.save_due(self.clock)
                validate = self.step % config.eval_every == 0 or timed or (reason is not None and reason not in SIGNALS)
                val = self.timed(self.validate, "validate") if validate else None
                reason = reason or self.patience_spent()
                self.report.row(self._row(loss, val, lr, chars_per_s, time.perf_counter() - start))
                if self.step % config.save_every == 0 or timed or reason is not None:
                    self.report.flush()
                    self.timed(self.save, "save", time.perf_counter() - start, reason)
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

    def timed(self, call, name: str, *args):
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
        self.report.start(verb, params, len(data.train_ids), len(data.val_ids), len(data.vocab), self.device)
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
            self.carried = model.init_state(self.config.batch_size // self.world.size)
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
        """The batch's mean cross-entropy (in autocast's precision, if any) and the state after it."""
        with torch.autocast(self.device.type, self.autocast_dtype, enabled=self.autocast_dtype is not None):
            logits, carried = (self.ddp or self.model)(batch.inputs, self.carried)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1))
        return loss, carried

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


def _streams_of(world: World, batches: BatchSource) -> BatchSource:
    """This rank's share of the streams: streams rank, rank + size, ... (batch_size stays global)."""
    return batches.shard(world.rank, world.size) if world.distributed else batches


def _moving_average(model: CharRNN, decay: float) -> AveragedModel:
    """An exponential moving average of `model`'s weights that starts as their plain running mean,
    so that the first steps' random weights do not linger in it for 1/(1-decay) steps."""

    def average(averaged: list[torch.Tensor], current: list[torch.Tensor], count: torch.Tensor) -> None:
        torch._foreach_lerp_(averaged, current, max(1.0 / (int(count) + 1), 1.0 - decay))  # all in one call

    averaged = AveragedModel(model, multi_avg_fn=average)
    averaged.module.eval()
    return averaged


# --- entry points ------------------------------------------------------------------------------------


def _make_run_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CharRNNError(f"cannot create output directory {path}: {exc.strerror}") from exc
    if not os.access(path, os.W_OK):
        raise CharRNNError(f"output directory {path} is not writable")


def train(
    config: TrainConfig, stream=None, keep_freed_memory: bool = False, choose_for_budget: bool = False
) -> TrainResult:
    """Start a new run in `config.out` (which must not hold one already). `keep_freed_memory` asks
    glibc to keep freed memory for reuse once the text is read (`allocator`; the CLI sets it).
    `choose_for_budget` lets the time budget choose the model (budget.py), as the command does when no
    flag shapes it; the choice is saved in run.json, so a resume trains what was chosen."""
    world = distributed.from_environment()
    run_dir = RunDir(config.out)
    if not config.texts:
        raise CharRNNError("no text files given to train on")
    _check_split(config, world)
    if run_dir.checkpoints():
        if distributed.restarted():  # torchrun --max-restarts started the group again: go on from the newest
            return resume(run_dir.path, stream=stream, keep_freed_memory=keep_freed_memory)
        raise CharRNNError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or pick another --out")
    config = replace(
        config,
        texts=tuple(str(Path(t).resolve()) for t in config.texts),
        val_texts=tuple(str(Path(t).resolve()) for t in config.val_texts),
    )
    if config.tensorboard:
        tensorboard.check_available()
    vocab = initial_weights = None
    if config.init_from:
        config, vocab, initial_weights = starting_point(config)
    data = _fine_tuning_data(config, vocab) if vocab else prepare_data(config)
    config = replace(config, model=config.model.for_vocab(len(data.vocab)))  # run.json records what was built
    device = devices.select_device(distributed.device_for(world, config.device))
    devices.autocast_dtype(config.precision, device, config.model.cell)  # refuse early
    if world.is_main:
        _make_run_dir(run_dir.path)
    with _main_lock(run_dir, world):
        if world.is_main and run_dir.checkpoints():  # checked again under the lock: another process may have won
            raise CharRNNError(f"{run_dir} already holds a run; continue it with --resume {run_dir}")
        if world.is_main:
            run_dir.metrics_file.unlink(missing_ok=True)  # from a run that died before its first checkpoint
        if keep_freed_memory:
            allocator.keep_freed_memory()
        choice = None
        budget_start = time.perf_counter()
        if choose_for_budget:
            from .budget import applies, choose  # budget.py times steps with a Trainer of its own

            if applies(config, world):
                config, choice = choose(config, data)
        trainer = Trainer(config, run_dir, data, stream, initial_weights, world)
        if choice is not None:
            trainer.notes.append(choice.line())
            trainer.elapsed_prior = time.perf_counter() - budget_start  # the probe spends the budget too
        if world.is_main:
            run_dir.write(_run_record(config, data.vocab, data.fingerprint, choice=choice and choice.to_json()))
        return _run_with_signals(trainer, resumed=False)


def _check_split(config: TrainConfig, world: World) -> None:
    if world.distributed and config.batch_size % world.size:
        raise CharRNNError(
            f"batch_size (--batch-size) {config.batch_size} does not split over {world.size} processes: each "
            f"takes an equal share of the streams; give a multiple of {world.size}"
        )


def _main_lock(run_dir: RunDir, world: World):
    """The run's lock, held by rank 0 alone (the only rank that writes)."""
    return run_dir.lock() if world.is_main else contextlib.nullcontext()


def _fine_tuning_data(config: TrainConfig, vocab: Vocab) -> Data:
    try:
        return prepare_data(config, vocab)
    except CharRNNError as exc:
        if "vocabulary" not in str(exc):
            raise
        raise CharRNNError(f"--init-from {config.init_from}: the new text does not fit its model: {exc}") from exc


def _run_record(
    config: TrainConfig, vocab: Vocab, fingerprint: str, created: str | None = None, choice: dict | None = None
) -> dict:
    record = {
        "train": config.to_json(),
        "vocab": vocab.to_json(),
        "text_sha256": fingerprint,
        "created": created or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": devices.environment(),
    }
    if choice is not None:
        record["choice"] = choice  # what the budget chose and why (budget.py)
    return record


def resume(
    run_dir: str | os.PathLike, changes: dict | None = None, stream=None, keep_freed_memory: bool = False
) -> TrainResult:
    """Continue the run in `run_dir` from its newest checkpoint; `changes` may alter only how long it runs
    (and its precision: a warning says that the numbers then differ from an unbroken run's)."""
    world = distributed.from_environment()
    run_dir = RunDir(run_dir)
    run = run_dir.read("start one with charrnn train")
    saved = TrainConfig.from_json(run["train"])
    config = saved.with_changes(changes or {})
    _check_split(config, world)
    with _main_lock(run_dir, world):
        if world.is_main:
            run_dir.clean_temporaries()
        newest, tensors = _newest_checkpoint(run_dir)
        data = prepare_data(config, Vocab.from_json(run["vocab"]))
        if data.fingerprint != run["text_sha256"]:
            raise CharRNNError(f"the training text changed since {run_dir} was started; resume needs the same text")
        if keep_freed_memory:
            allocator.keep_freed_memory()
        trainer = Trainer(config, run_dir, data, stream, world=world)
        trainer.restore(newest.meta, tensors)
        if trainer.stop_reason(trainer.elapsed_prior, StopSignals()) or trainer.patience_spent():
            raise CharRNNError(
                f"{run_dir} already finished at step {trainer.step}; pass a larger --max-steps, --epochs, "
                "--time-budget or --patience"
            )
        trainer.notes = _resume_warnings(saved, config, run.get("environment"))
        if world.is_main:
            run_dir.write(_run_record(config, data.vocab, data.fingerprint, run.get("created"), run.get("choice")))
        return _run_with_signals(trainer, resumed=True)


def _newest_checkpoint(run_dir: RunDir) -> tuple[CheckpointInfo, dict[str, torch.Tensor]]:
    checkpoints = run_dir.checkpoints()
    if not checkpoints:
        raise CharRNNError(
            f"{run_dir}: no checkpoint to resume from; start it again with charrnn train --out {run_dir}"
        )
    newest = checkpoints[-1]
    try:
        return newest, load_tensors(newest)
    except CharRNNError as exc:
        good = run_dir.newest_good()
        hint = (
            f"; the newest good one is {good.meta_path.name}: delete the damaged files to resume from it"
            if good
            else ""
        )
        raise CharRNNError(f"{exc}{hint}") from exc


def _resume_warnings(saved: TrainConfig, config: TrainConfig, environment: dict | None) -> list[str]:
    warnings = []
    if config.precision != saved.precision:
        warnings.append(
            f"warning: resuming a {saved.precision} run in {config.precision}: this continues the training, "
            "not the same numbers an unbroken run would give"
        )
    here = devices.environment()
    if environment is not None and environment != here:
        then = ", ".join(f"{k} {environment.get(k)}" for k in here)
        now = ", ".join(f"{k} {v}" for k, v in here.items())
        warnings.append(
            f"warning: trained with {then}; here {now}: bit-for-bit equality with an unbroken run is not promised"
        )
    return warnings


def _run_with_signals(trainer: Trainer, resumed: bool) -> TrainResult:
    signals = StopSignals()
    try:
        with signals.installed():
            result = trainer.run(signals, resumed)
    except BaseException:
        trainer.release_ddp()
        distributed.finish(together=False)
        raise
    trainer.release_ddp()
    distributed.finish()
    return result
