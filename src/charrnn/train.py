"""The training loop: Adam, a warm-up and cosine schedule, global-norm clipping, the recurrent state
carried (detached) from batch to batch and reset at each epoch, periodic validation and checkpoints.

`train(config)` starts a run, `resume(run_dir, changes)` continues one exactly where its newest
checkpoint left it: weights, optimizer moments, RNG state, carried state, data position and
counters all come back, so a resumed run ends bit-for-bit where an unbroken one would (on CUDA only
without dropout: cuDNN draws its dropout masks from a generator no checkpoint can hold).
Printing goes through `metrics.Progress`; argument parsing lives in the CLI.
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel

from . import allocator
from . import checkpoint as ckpt
from .batches import BatchSource
from .config import TrainConfig
from .corpus import iter_chunks, max_chars, train_val_split
from .errors import CharRNNError
from .evaluate import LN2, evaluate
from .metrics import MetricsCSV, Progress, StepMetrics
from .model import CharRNN, count_parameters
from .vocab import Vocab

NAN_FAULT_ENV = "CHARRNN_FAULT_NAN_AT_STEP"  # test seam: poison the loss at this step
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int
    stopped_by: str  # max_steps | epochs | time_budget | SIGINT | SIGTERM
    train_loss: float | None
    val_loss: float | None
    checkpoint: Path | None

    @property
    def exit_code(self) -> int:
        return {"SIGINT": 130, "SIGTERM": 143}.get(self.stopped_by, 0)


def select_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CharRNNError("--device cuda: no CUDA GPU is available here; use --device cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise CharRNNError("--device mps: Apple's Metal backend is not available here; use --device cpu")
    return torch.device(name)


# --- data ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    vocab: Vocab
    train_ids: np.ndarray
    val_ids: np.ndarray
    fingerprint: str  # sha256 of the encoded text: a resume must see the same text


def prepare_data(config: TrainConfig, vocab: Vocab | None = None) -> Data:
    def chunks():
        return iter_chunks(config.texts, config.encoding, config.errors)

    # Two passes over the files (vocabulary, then ids) keep memory at about one byte per character.
    vocab = vocab or Vocab.from_chunks(chunks())
    ids = vocab.encode_chunks(chunks(), max_chars(config.texts))
    train_ids, val_ids = train_val_split(ids, config.val_fraction)
    need = config.batch_size * config.seq_len + 1
    if len(train_ids) < need:
        total = math.ceil(need / (1 - config.val_fraction))
        raise CharRNNError(
            f"text too short: {len(train_ids)} training characters, but --batch-size {config.batch_size} "
            f"--seq-len {config.seq_len} need {need} ({total} in all with --val-fraction {config.val_fraction}); "
            "use a longer text or smaller --batch-size/--seq-len"
        )
    if config.val_fraction > 0 and len(val_ids) < 2:
        raise CharRNNError("text too short for its validation split; raise --val-fraction or use --val-fraction 0")
    return Data(vocab, train_ids, val_ids, hashlib.sha256(memoryview(ids)).hexdigest())


# --- signals -------------------------------------------------------------------------------------


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


# --- the loop --------------------------------------------------------------------------------------


class Trainer:
    def __init__(self, config: TrainConfig, run_dir: Path, data: Data, stream=None):
        allocator.keep_freed_memory()  # steps reuse their buffers instead of faulting them in afresh
        self.config = config
        self.run_dir = run_dir
        self.data = data
        self.device = select_device(config.device)
        torch.manual_seed(config.seed)
        model_config = config.model.for_vocab(len(data.vocab))
        self.model = CharRNN(model_config).to(self.device)
        # fused: one kernel for all parameters' updates (2.0 -> 0.6 ms a step for one layer of 768 here)
        fused = self.device.type in ("cpu", "cuda")
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, betas=(0.9, config.adam_beta2), fused=fused
        )
        self.average = _moving_average(self.model, config.ema) if config.ema else None
        self.autocast_dtype = _autocast_dtype(config.precision, self.device)
        # fp16's narrow range needs the loss scaled up so small gradients survive; bf16 and fp32 do not.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16")
        offset_seed = config.seed if config.shift_epochs else None
        self.batches = BatchSource(data.train_ids, config.batch_size, config.seq_len, self.device, offset_seed)
        self.state = self.model.init_state(config.batch_size)
        self.step = 0
        self.elapsed_prior = 0.0  # training seconds spent before this process (resumed runs)
        self.val_loss: float | None = None
        self.val_step = -1  # the step at which val_loss was measured
        self.best_val: float | None = None
        self.train_loss_ema: float | None = None
        self.train_loss_at_best: float | None = None  # tells a diverging run from an overfitting one at the end
        self.stream = stream
        self._nan_step = int(os.environ.get(NAN_FAULT_ENV, "0"))

    # -- schedule ---------------------------------------------------------------------------------

    def progress(self, elapsed: float) -> float:
        """How far through the run we are, 0..1, by whichever stop condition is nearest."""
        parts = []
        if self.config.max_steps:
            parts.append(self.step / self.config.max_steps)
        if self.config.epochs:
            parts.append(self.step / (self.config.epochs * self.batches.windows_per_epoch))
        if self.config.time_budget:
            parts.append(elapsed / self.config.time_budget)
        return min(max(parts), 1.0)

    def lr_at(self, elapsed: float) -> float:
        config = self.config
        warmup = min(1.0, (self.step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
        if config.lr_schedule == "constant":
            return config.lr * warmup
        cosine = 0.5 * (1 + math.cos(math.pi * self.progress(elapsed)))
        return config.lr * warmup * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)

    # -- one step ---------------------------------------------------------------------------------

    def train_step(self, lr: float) -> tuple[float, int]:
        """One batch: forward, backward, clip, Adam. Returns the loss and the characters it covered."""
        batch = self.batches.next_batch()
        if batch.starts_epoch:
            self.state = self.model.init_state(self.config.batch_size)
        with torch.autocast(self.device.type, self.autocast_dtype, enabled=self.autocast_dtype is not None):
            logits, state = self.model(batch.inputs, self.state)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1))
        if self.step + 1 == self._nan_step:
            loss = loss * float("nan")
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise self._non_finite("loss")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            # With fp16 an overflow is expected now and then: the scaler skips that step and scales down.
            if not torch.isfinite(norm) and not self.scaler.is_enabled():
                raise self._non_finite("gradient")
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.average is not None:
            self.average.update_parameters(self.model)
        self.state = tuple(s.detach() for s in state)
        self.step += 1
        return loss_value, batch.targets.numel()

    def _non_finite(self, what: str) -> CharRNNError:
        good = ckpt.list_checkpoints(self.run_dir)
        kept = f"; the last good checkpoint is {good[-1].tensors_path}" if good else ""
        return CharRNNError(
            f"{what} became NaN or infinite at step {self.step + 1}; stopped without saving the bad weights{kept}. "
            "Try a lower --lr or --grad-clip"
        )

    # -- the run ----------------------------------------------------------------------------------

    def stop_reason(self, elapsed: float, signals: StopSignals) -> str | None:
        config = self.config
        if signals.received:
            return signals.received
        if config.max_steps and self.step >= config.max_steps:
            return "max_steps"
        if config.epochs and self.batches.epoch >= config.epochs:
            return "epochs"
        if config.time_budget and elapsed >= config.time_budget:
            return "time_budget"
        return None

    def run(self, signals: StopSignals, resumed: bool) -> TrainResult:
        progress = Progress(
            self.config.max_steps, self.step, every=max(1, self.config.eval_every // 10), stream=self.stream
        )
        metrics = MetricsCSV(self.run_dir / "metrics.csv", resume_from_step=self.step if resumed else None)
        start = time.perf_counter()
        last_saved_step = self.step if resumed else -1
        # The newest row waits to be written until the next step, so that a validation at the stop joins it.
        held: StepMetrics | None = None
        self._announce(progress, resumed)
        try:
            while (reason := self.stop_reason(self.elapsed_prior + time.perf_counter() - start, signals)) is None:
                step_start = time.perf_counter()
                lr = self.lr_at(self.elapsed_prior + step_start - start)
                loss, chars = self.train_step(lr)
                self.train_loss_ema = loss if self.train_loss_ema is None else 0.95 * self.train_loss_ema + 0.05 * loss
                chars_per_s = chars / (time.perf_counter() - step_start)
                val = self.validate() if self.step % self.config.eval_every == 0 else None
                if held is not None:
                    metrics.write(held)
                held = self._row(loss, val, lr, chars_per_s, self.elapsed_prior + time.perf_counter() - start)
                progress.step(held, self._line(held))
                if self.step % self.config.save_every == 0:
                    metrics.write(held)
                    held = None
                    metrics.flush()
                    self.save(self.elapsed_prior + time.perf_counter() - start)
                    last_saved_step = self.step
            if self.step != last_saved_step:
                if reason not in ("SIGINT", "SIGTERM") and self.val_step != self.step:
                    val = self.validate()
                    held = replace(held, val_loss=val) if held is not None else None
                if held is not None:
                    metrics.write(held)
                metrics.flush()
                self.save(self.elapsed_prior + time.perf_counter() - start)
        finally:
            metrics.close()
            progress.close()
        return self._finish(progress, reason)

    def validate(self) -> float | None:
        if len(self.data.val_ids) < 2:
            return None
        self.val_loss, self.val_step = evaluate(self.inference_model, self.data.val_ids).loss, self.step
        if self.best_val is None or self.val_loss < self.best_val:
            self.best_val, self.train_loss_at_best = self.val_loss, self.train_loss_ema
        return self.val_loss

    @property
    def inference_model(self) -> CharRNN:
        """The weights validation scores and checkpoints offer for sampling: the average, if kept."""
        return self.model if self.average is None else self.average.module

    def _row(self, loss, val, lr, chars_per_s, elapsed) -> StepMetrics:
        epoch = self.batches.epoch + self.batches.window / self.batches.windows_per_epoch
        return StepMetrics(self.step, epoch, elapsed, loss, val, lr, chars_per_s)

    @staticmethod
    def _line(row: StepMetrics) -> str:
        line = f"epoch {row.epoch:.2f} step {row.step} | train {row.train_loss:.4f}"
        if row.val_loss is not None:
            line += f" | val {row.val_loss:.4f} nats {row.val_loss / LN2:.4f} bpc"
        return line + f" | lr {row.lr:.2e} | {row.chars_per_s:,.0f} chars/s"

    def _announce(self, progress: Progress, resumed: bool) -> None:
        params, chars = count_parameters(self.model), len(self.data.train_ids)
        verb = f"resuming at step {self.step}" if resumed else "training"
        progress.message(
            f"{verb}: {params:,} parameters, {chars:,} training characters, {len(self.data.val_ids):,} validation, "
            f"vocabulary {len(self.data.vocab)}, device {self.device}"
        )
        ratio = params / chars
        if ratio < 0.01:
            advice = "far fewer parameters than characters: the model will likely underfit (raise --hidden)"
        elif ratio > 10:
            advice = "far more parameters than characters: it may overfit (raise --dropout or lower --hidden)"
        else:
            advice = "a reasonable match; if validation loss ends well above training loss, raise --dropout"
        progress.message(f"hint: {ratio:.2g} parameters per training character, {advice}")

    def _finish(self, progress: Progress, reason: str) -> TrainResult:
        latest = ckpt.list_checkpoints(self.run_dir)
        path = latest[-1].tensors_path if latest else None
        if reason in ("SIGINT", "SIGTERM"):
            progress.message(f"stopped by {reason} at step {self.step}; saved {path}")
            progress.message(f"resume with: charrnn train --resume {self.run_dir}")
        else:
            summary = f"done at step {self.step} ({reason}); saved {path}"
            if self.val_loss is not None:
                summary += f"; validation {self.val_loss:.4f} nats/char ({self.val_loss / LN2:.4f} bpc)"
            progress.message(summary)
            hint = rising_validation_hint(self.val_loss, self.best_val, self.train_loss_ema, self.train_loss_at_best)
            if hint:
                progress.message(hint)
        return TrainResult(self.run_dir, self.step, reason, self.train_loss_ema, self.val_loss, path)

    # -- checkpoints --------------------------------------------------------------------------------

    def save(self, elapsed: float) -> None:
        # "model." holds the weights to use (the average, if kept); "train." the ones being trained beside it
        tensors = {f"model.{k}": v for k, v in self.inference_model.state_dict().items()}
        if self.average is not None:
            tensors.update({f"train.{k}": v for k, v in self.model.state_dict().items()})
            tensors["average.count"] = self.average.n_averaged
        optim_state = self.optimizer.state_dict()
        for index, param_state in optim_state["state"].items():
            for key, value in param_state.items():
                tensors[f"optim.{index}.{key}"] = torch.as_tensor(value)
        if self.scaler.is_enabled():
            scaler_state = self.scaler.state_dict()
            tensors["scaler.scale"] = torch.tensor(scaler_state["scale"])
            tensors["scaler.growth_tracker"] = torch.tensor(scaler_state["_growth_tracker"])
        tensors["rng.torch"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        for index, tensor in enumerate(self.state):
            tensors[f"state.{index}"] = tensor
        meta = {
            "step": self.step,
            "epoch": self.batches.epoch + self.batches.window / self.batches.windows_per_epoch,
            "train_loss": self.train_loss_ema,
            "val_loss": self.val_loss if self.val_step == self.step else None,
            "best_val_loss": self.best_val,
            "train_loss_at_best": self.train_loss_at_best,
            "elapsed_s": elapsed,
            "position": self.batches.state_dict(),
            "optimizer_groups": [{k: v for k, v in g.items() if k != "params"} for g in optim_state["param_groups"]],
            "model": self.model.config.to_json(),
            "vocab": self.data.vocab.to_json(),
        }
        ckpt.save_checkpoint(self.run_dir, tensors, meta)
        ckpt.update_best_pointer(self.run_dir)
        ckpt.prune_checkpoints(self.run_dir, self.config.keep)

    def restore(self, info: ckpt.CheckpointInfo, tensors: dict[str, torch.Tensor]) -> None:
        meta = info.meta
        used = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
        trained = {k.removeprefix("train."): v for k, v in tensors.items() if k.startswith("train.")}
        self.model.load_state_dict(trained or used)
        if self.average is not None:
            self.average.module.load_state_dict(used)
            self.average.n_averaged.copy_(tensors["average.count"])
        per_param: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                per_param.setdefault(int(index), {})[name] = value
        groups = [
            {**g, "params": list(range(len(self.optimizer.param_groups[0]["params"])))}
            for g in meta["optimizer_groups"]
        ]
        self.optimizer.load_state_dict({"state": per_param, "param_groups": groups})
        if self.scaler.is_enabled() and "scaler.scale" in tensors:
            scaler_state = self.scaler.state_dict()
            scaler_state["scale"] = tensors["scaler.scale"].item()
            scaler_state["_growth_tracker"] = int(tensors["scaler.growth_tracker"].item())
            self.scaler.load_state_dict(scaler_state)
        torch.set_rng_state(tensors["rng.torch"])
        if self.device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        count = sum(1 for k in tensors if k.startswith("state."))
        self.state = tuple(tensors[f"state.{i}"].to(self.device) for i in range(count))
        self.batches.load_state_dict(meta["position"])
        self.step = int(meta["step"])
        self.elapsed_prior = float(meta["elapsed_s"])
        self.val_loss = meta.get("val_loss")
        self.val_step = self.step if self.val_loss is not None else -1
        self.best_val = meta.get("best_val_loss")
        self.train_loss_ema = meta.get("train_loss")
        self.train_loss_at_best = meta.get("train_loss_at_best")


def rising_validation_hint(
    val_loss: float | None,
    best_val: float | None,
    train_loss: float | None = None,
    train_loss_at_best: float | None = None,
) -> str | None:
    """A hint when validation ended clearly above its best. If training loss rose as well, training diverged;
    if not, the model has begun to learn the text by heart. (A gap between training and validation loss alone
    is no sign: a wide model shows one while still improving.)"""
    if val_loss is None or best_val is None or val_loss <= best_val * 1.01:
        return None
    rose = (
        f"hint: validation loss rose from its best, {best_val:.4f} (kept as the `best` checkpoint), to {val_loss:.4f}"
    )
    # 10%: the smoothed training loss wanders a few percent from batch to batch, a diverging run far more.
    if train_loss is not None and train_loss_at_best is not None and train_loss > train_loss_at_best * 1.1:
        return (
            f"{rose}, and training loss rose too, from {train_loss_at_best:.4f} to {train_loss:.4f}: "
            "training diverged; lower --lr (or --grad-clip)"
        )
    return f"{rose}: overfitting; raise --dropout, shrink the model or train for less"


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    # oneDNN has no fp16 LSTM, so fp16 is for CUDA alone; bf16 runs on any CPU (fast with AVX512-BF16 or AMX).
    dtype = AUTOCAST_DTYPES.get(precision)
    allowed = ("cuda",) if precision == "fp16" else ("cuda", "cpu")
    if dtype is not None and device.type not in allowed:
        raise CharRNNError(
            f"--precision {precision} runs on {' or '.join(allowed)}, not {device.type}; use --precision fp32"
        )
    return dtype


def _moving_average(model: CharRNN, decay: float) -> AveragedModel:
    """An exponential moving average of `model`'s weights that starts as their plain running mean,
    so that the first steps' random weights do not linger in it for 1/(1-decay) steps."""

    def average(averaged: list[torch.Tensor], current: list[torch.Tensor], count: torch.Tensor) -> None:
        # all parameters in one call (0.95 -> 0.18 ms a step for one layer of 768 here)
        torch._foreach_lerp_(averaged, current, max(1.0 / (int(count) + 1), 1.0 - decay))

    averaged = AveragedModel(model, multi_avg_fn=average)
    averaged.module.eval()
    return averaged


# --- entry points ------------------------------------------------------------------------------------


def _run_json(config: TrainConfig, data: Data) -> dict:
    return {
        "program": ckpt.PROGRAM,
        "format": ckpt.FORMAT_VERSION,
        "train": config.to_json(),
        "vocab": data.vocab.to_json(),
        "text_sha256": data.fingerprint,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _make_run_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CharRNNError(f"cannot create output directory {path}: {exc.strerror}") from exc
    if not os.access(path, os.W_OK):
        raise CharRNNError(f"output directory {path} is not writable")


def train(config: TrainConfig, stream=None) -> TrainResult:
    """Start a new run in `config.out` (which must not hold one already)."""
    run_dir = Path(config.out)
    if not config.texts:
        raise CharRNNError("no text files given to train on")
    if ckpt.list_checkpoints(run_dir):
        raise CharRNNError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or pick another --out")
    config = replace(config, texts=tuple(str(Path(t).resolve()) for t in config.texts))
    data = prepare_data(config)
    config = replace(config, model=config.model.for_vocab(len(data.vocab)))  # run.json records what was built
    _autocast_dtype(config.precision, select_device(config.device))  # refuse these before creating anything
    _make_run_dir(run_dir)
    with ckpt.RunLock(run_dir):
        if ckpt.list_checkpoints(run_dir):  # checked again under the lock: another process may have won
            raise CharRNNError(f"{run_dir} already holds a run; continue it with --resume {run_dir}")
        (run_dir / "metrics.csv").unlink(missing_ok=True)  # from a run that died before its first checkpoint
        trainer = Trainer(config, run_dir, data, stream)
        ckpt.atomic_write_json(run_dir / ckpt.RUN_FILE, _run_json(config, data))
        return _run_with_signals(trainer, resumed=False)


def resume(run_dir: str | os.PathLike, changes: dict | None = None, stream=None) -> TrainResult:
    """Continue the run in `run_dir` from its newest checkpoint; `changes` may alter only how long it runs."""
    run_dir = Path(run_dir)
    run = _read_run(run_dir, "start one with charrnn train")
    config = TrainConfig.from_json(run["train"]).with_changes(changes or {})
    vocab = Vocab.from_json(run["vocab"])
    with ckpt.RunLock(run_dir):
        ckpt.clean_temporaries(run_dir)
        checkpoints = ckpt.list_checkpoints(run_dir)
        if not checkpoints:
            raise CharRNNError(
                f"{run_dir}: no checkpoint to resume from; start it again with charrnn train --out {run_dir}"
            )
        newest = checkpoints[-1]
        try:
            tensors = ckpt.load_tensors(newest)
        except CharRNNError as exc:
            good = ckpt.newest_good(checkpoints)
            hint = (
                f"; the newest good one is {good.meta_path.name}: delete the damaged files to resume from it"
                if good
                else ""
            )
            raise CharRNNError(f"{exc}{hint}") from exc
        data = prepare_data(config, vocab)
        if data.fingerprint != run["text_sha256"]:
            raise CharRNNError(f"the training text changed since {run_dir} was started; resume needs the same text")
        trainer = Trainer(config, run_dir, data, stream)
        trainer.restore(newest, tensors)
        ckpt.atomic_write_json(run_dir / ckpt.RUN_FILE, {**run, "train": config.to_json()})
        if trainer.stop_reason(trainer.elapsed_prior, StopSignals()) is not None:
            raise CharRNNError(
                f"{run_dir} already finished at step {trainer.step}; pass a larger --max-steps, --epochs or --time-budget"
            )
        return _run_with_signals(trainer, resumed=True)


def _read_run(run_dir: Path, hint: str) -> dict:
    if not (run_dir / ckpt.RUN_FILE).is_file():
        raise CharRNNError(f"{run_dir}: not a charrnn run directory (no {ckpt.RUN_FILE}); {hint}")
    run = ckpt.read_json(run_dir / ckpt.RUN_FILE, "charrnn run file")
    ckpt.check_header(run, run_dir / ckpt.RUN_FILE)
    return run


def validation_ids(path: str | os.PathLike) -> np.ndarray:
    """The validation text of the run that holds `path` (its directory or one of its checkpoint files),
    read again from its training files and split as in training: what its validation loss measured."""
    path = Path(path)
    run_dir = path if path.is_dir() else path.resolve().parent.parent
    run = _read_run(run_dir, "give the text to evaluate")
    config = TrainConfig.from_json(run["train"])
    for text in config.texts:
        if not Path(text).is_file():
            raise CharRNNError(f"{text}: {run_dir}'s training text is gone; give the text to evaluate")
    changed = f"the training text changed since {run_dir} was trained"
    try:
        data = prepare_data(config, Vocab.from_json(run["vocab"]))
    except CharRNNError as exc:  # new characters, or too short now
        raise CharRNNError(f"{changed} ({exc}); give the text to evaluate") from exc
    if data.fingerprint != run["text_sha256"]:
        raise CharRNNError(f"{changed}; give the text to evaluate")
    if len(data.val_ids) < 2:
        raise CharRNNError(
            f"{run_dir} was trained without validation text (--val-fraction 0); give the text to evaluate"
        )
    return data.val_ids


def _run_with_signals(trainer: Trainer, resumed: bool) -> TrainResult:
    signals = StopSignals()
    with signals.installed():
        return trainer.run(signals, resumed)
