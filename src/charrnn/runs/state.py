"""The training state in a checkpoint: the one place that knows its tensor keys.

    model.*          the weights to use (the moving average, if kept), what sampling loads
    train.*          the weights being trained, when a moving average is kept beside them
    average.count    how many steps the average has seen
    optim.I.NAME     Adam's per-parameter state (step, exp_avg, exp_avg_sq) of parameter I
    rng.torch        torch's CPU generator (rank 0's under torchrun); rng.cuda the GPU's, on CUDA
    rng.rank.R       rank R's CPU generator, for R > 0, in a multi-process run (its dropout masks)
    rng.weight_drop  the generator every rank shares for weight-drop masks, in a multi-process run
    state.I          the carried recurrent state, one tensor per part ((h, c) for an LSTM)

The rest (Adam's hyperparameters, the fp16 loss scaler, the data position) is JSON and goes into
the checkpoint's metadata. `pack` and `unpack` are each other's inverse; `unpack` also reads format 1,
which kept the scaler's two numbers as tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.optim.swa_utils import AveragedModel

from ..data.batches import BatchSource
from ..model.network import CharRNN, State


@dataclass
class TrainingParts:
    """What a checkpoint restores in place, besides the counters the trainer keeps itself."""

    model: CharRNN
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    batches: BatchSource
    average: AveragedModel | None = None

    @property
    def inference_model(self) -> CharRNN:
        """The weights validation scores and checkpoints offer for sampling: the average, if kept."""
        return self.model if self.average is None else self.average.module


def inference_weights(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The `CharRNN` state dict a checkpoint offers for sampling and evaluation."""
    return _with_prefix(tensors, "model.")


def _with_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def pack(parts: TrainingParts, carried: State) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata entries) holding everything `unpack` needs to continue the run exactly."""
    tensors = {f"model.{k}": v for k, v in parts.inference_model.state_dict().items()}
    if parts.average is not None:
        tensors.update({f"train.{k}": v for k, v in parts.model.state_dict().items()})
        tensors["average.count"] = parts.average.n_averaged
    optim_state = parts.optimizer.state_dict()
    for index, param_state in optim_state["state"].items():
        for key, value in param_state.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value)
    tensors["rng.torch"] = torch.get_rng_state()
    device = parts.model.device
    if device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    tensors.update({f"state.{index}": tensor for index, tensor in enumerate(carried)})
    meta = {
        "position": parts.batches.state_dict(),
        "optimizer_groups": [{k: v for k, v in g.items() if k != "params"} for g in optim_state["param_groups"]],
    }
    if parts.scaler.is_enabled():
        meta["scaler"] = parts.scaler.state_dict()
    return tensors, meta


def unpack(parts: TrainingParts, tensors: dict[str, torch.Tensor], meta: dict) -> State:
    """Restore `parts` from what `pack` wrote (or format 1 wrote); returns the carried state."""
    used, trained = inference_weights(tensors), _with_prefix(tensors, "train.")
    parts.model.load_state_dict(trained or used)
    if parts.average is not None:
        parts.average.module.load_state_dict(used)
        parts.average.n_averaged.copy_(tensors["average.count"])
    per_param: dict[int, dict] = {}
    for key, value in _with_prefix(tensors, "optim.").items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    param_count = len(parts.optimizer.param_groups[0]["params"])
    groups = [{**g, "params": list(range(param_count))} for g in meta["optimizer_groups"]]
    parts.optimizer.load_state_dict({"state": per_param, "param_groups": groups})
    if parts.scaler.is_enabled():
        _restore_scaler(parts.scaler, tensors, meta)
    torch.set_rng_state(tensors["rng.torch"])
    device = parts.model.device
    if device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    parts.batches.load_state_dict(meta["position"])
    carried = _with_prefix(tensors, "state.")
    return tuple(carried[str(i)].to(device) for i in range(len(carried)))


def _restore_scaler(scaler: torch.amp.GradScaler, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """The fp16 loss scaler as saved; a run saved without one (trained in another precision) starts afresh."""
    if "scaler" in meta:
        scaler.load_state_dict(meta["scaler"])
    elif "scaler.scale" in tensors:  # format 1
        old = {"scale": tensors["scaler.scale"].item(), "_growth_tracker": int(tensors["scaler.growth_tracker"].item())}
        scaler.load_state_dict({**scaler.state_dict(), **old})


def pack_ranks(rank_states: list[torch.Tensor], weight_drop: torch.Generator | None) -> dict[str, torch.Tensor]:
    """The multi-process run's other generators: each rank's past rank 0, and the shared weight-drop one."""
    tensors = {f"rng.rank.{rank}": state for rank, state in enumerate(rank_states) if rank > 0}
    if weight_drop is not None:
        tensors["rng.weight_drop"] = weight_drop.get_state()
    return tensors


def rank_generator(tensors: dict[str, torch.Tensor], rank: int) -> torch.Tensor | None:
    """Rank `rank`'s saved CPU generator (rank 0's is rng.torch); None when the run had no such rank."""
    return tensors["rng.torch"] if rank == 0 else tensors.get(f"rng.rank.{rank}")


def weight_drop_generator(tensors: dict[str, torch.Tensor]) -> torch.Tensor | None:
    return tensors.get("rng.weight_drop")
