"""Starting and continuing runs: `train(config)` starts one, `resume(run_dir, changes)` continues one
exactly where its newest checkpoint left it (weights, optimizer moments, RNG state, carried state, data
position and counters: state.py), so a resumed run ends bit-for-bit where an unbroken one would on the
same machine (on CUDA only without dropout: cuDNN draws its dropout masks from a generator no
checkpoint can hold). Both own the run directory and its lock, the fine-tuning start and the time
budget's choice; build.py builds the trainer, trainer.py runs it.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import replace
from pathlib import Path

import torch

from ..data.dataset import Data, prepare_data
from ..data.vocab import Vocab
from ..errors import CharRNNError
from ..model import devices
from ..runs.checkpoint import CheckpointInfo, load_tensors
from ..runs.rundir import RunDir
from . import allocator, distributed, tensorboard
from .budget import applies, choose
from .build import build_trainer
from .config import TrainConfig
from .distributed import World
from .finetune import starting_point
from .trainer import StopSignals, Trainer, TrainResult


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
        teachers=tuple(str(Path(t).resolve()) for t in config.teachers),
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
        if choose_for_budget and applies(config, world):
            config, choice = choose(config, data)
        trainer = build_trainer(config, data, run_dir, stream, initial_weights, world)
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
        trainer = build_trainer(config, data, run_dir, stream, world=world)
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
