"""What a training run is made of, built before the loop starts and handed to it (minGPT's split): the
model, Adam, the fp16 loss scaler, the batches, the moving average, and for torchrun the process
group and the DistributedDataParallel wrapper. `Trainer` only steps, validates, reports and saves.
"""

from __future__ import annotations

import os

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel

from ..data.batches import BatchSource
from ..data.dataset import Data
from ..model import devices
from ..model.network import CharRNN
from ..runs import state
from ..runs.rundir import RunDir
from . import distributed
from .config import TrainConfig
from .distill import Teachers
from .distributed import SINGLE, Agreement, World
from .trainer import Setup, Trainer


def build_trainer(
    config: TrainConfig,
    data: Data,
    run_dir: RunDir | str | os.PathLike | None = None,
    stream=None,
    initial_weights: dict | None = None,
    world: World = SINGLE,
) -> Trainer:
    """A trainer of `config` on `data`, seeded and on its device, saving into `run_dir` (None: it only
    steps); `initial_weights` start the model (fine-tuning)."""
    if run_dir is not None and not isinstance(run_dir, RunDir):
        run_dir = RunDir(run_dir)
    device = devices.select_device(distributed.device_for(world, config.device))
    distributed.start(world, device, config.dist_backend)
    autocast_dtype = devices.autocast_dtype(config.precision, device, config.model.cell)
    torch.manual_seed(config.seed)
    model = CharRNN(config.model.for_vocab(len(data.vocab)))
    if initial_weights is not None:  # --init-from
        model.load_state_dict(initial_weights)
    parts = training_parts(config, model.to(device), data, world, device)
    ddp = None
    if world.distributed:  # gradients averaged over the ranks; rank 0's weights broadcast at the start
        ddp = DistributedDataParallel(parts.model, device_ids=[device.index] if device.type == "cuda" else None)
        if config.model.weight_drop:
            parts.model.weight_drop_generator = torch.Generator().manual_seed(config.seed)
        if world.rank:
            torch.manual_seed(distributed.rank_seed(config.seed, world.rank))
    teachers = None
    if config.teachers:
        teachers = Teachers.load(config.teachers, data.vocab, device, config.distill_temperature)
    setup = Setup(world, device, Agreement(world, device), autocast_dtype, ddp, teachers)
    return Trainer(config, parts, data, setup, run_dir, stream)


def training_parts(
    config: TrainConfig, model: CharRNN, data: Data, world: World, device: torch.device
) -> state.TrainingParts:
    """The optimizer, scaler, batches and average around `model`: what a checkpoint restores in place."""
    batches = BatchSource(
        data.train_ids,
        config.batch_size,
        config.seq_len,
        device,
        config.seed if config.shift_epochs else None,
        config.reset_rate,
        config.seed,
    )
    return state.TrainingParts(
        model=model,
        # fused: one kernel for all parameters' updates (benchmarks/RESULTS.md)
        optimizer=torch.optim.Adam(
            model.parameters(), lr=config.lr, betas=(0.9, config.adam_beta2), fused=device.type in ("cpu", "cuda")
        ),
        # fp16's narrow range needs the loss scaled up so small gradients survive; bf16 and fp32 do not.
        scaler=torch.amp.GradScaler(device.type, enabled=config.precision == "fp16"),
        # This rank's share of the streams: streams rank, rank + size, ... (batch_size stays global).
        batches=batches.shard(world.rank, world.size) if world.distributed else batches,
        average=moving_average(model, config.ema) if config.ema else None,
    )


def moving_average(model: CharRNN, decay: float) -> AveragedModel:
    """An exponential moving average of `model`'s weights that starts as their plain running mean,
    so that the first steps' random weights do not linger in it for 1/(1-decay) steps."""

    def average(averaged: list[torch.Tensor], current: list[torch.Tensor], count: torch.Tensor) -> None:
        torch._foreach_lerp_(averaged, current, max(1.0 / (int(count) + 1), 1.0 - decay))  # all in one call

    averaged = AveragedModel(model, multi_avg_fn=average)
    averaged.module.eval()
    return averaged
