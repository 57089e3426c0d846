"""Training on several processes under `torchrun`: who this process is, and what the ranks agree on.

`torchrun` starts one process per rank and tells each its RANK, WORLD_SIZE and LOCAL_RANK; charrnn
joins them with `torch.distributed` (gloo on the CPU, NCCL on CUDA) and averages gradients with
DistributedDataParallel. Each step ends with one small all-reduce in which the ranks agree on the
mean loss, on rank 0's clock (which drives every rank's learning rate and the time budget), on
whether any rank was signalled and whether any loss was not finite, so that every rank stops at
the same step. A peer that dies makes the next collective fail; that ends every rank with one line.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import CharRNNError

# How long a collective waits for a peer that is alive but stuck; a dead peer fails at once.
TIMEOUT_S = 120.0
SIGNALS = ("SIGINT", "SIGTERM")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


SINGLE = World()


def from_environment() -> World:
    """This process's place, as torchrun describes it (one process alone without torchrun)."""
    try:
        return World(
            int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))
        )
    except ValueError as exc:
        raise CharRNNError(f"RANK, WORLD_SIZE or LOCAL_RANK is not a number ({exc})") from exc


def restarted() -> bool:
    """Whether torchrun restarted the worker group (`--max-restarts`): a run then resumes itself."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0


def device_for(world: World, asked: str) -> str:
    """The device a rank trains on: `cuda:LOCAL_RANK` for auto or cuda where GPUs are, one GPU a rank."""
    if not world.distributed or asked not in ("auto", "cuda"):
        return asked
    if not torch.cuda.is_available():
        if asked == "cuda":
            raise CharRNNError("--device cuda under torchrun, but this machine has no CUDA GPU")
        return "cpu"
    if world.local_rank >= torch.cuda.device_count():
        raise CharRNNError(
            f"--device {asked}: local rank {world.local_rank} needs a GPU of its own, but this node has "
            f"{torch.cuda.device_count()}; start fewer processes per node"
        )
    return f"cuda:{world.local_rank}"


def start(world: World, device: torch.device, backend: str = "auto") -> None:
    """Joins the process group (gloo for the CPU, NCCL for CUDA)."""
    if not world.distributed or dist.is_initialized():
        return
    chosen = ("nccl" if device.type == "cuda" else "gloo") if backend == "auto" else backend
    if chosen == "nccl" and device.type != "cuda":
        raise CharRNNError("--dist-backend nccl needs --device cuda; the CPU trains with gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    try:
        dist.init_process_group(chosen, timeout=datetime.timedelta(seconds=TIMEOUT_S))
    except (RuntimeError, ValueError) as exc:
        raise CharRNNError(f"rank {world.rank}: could not join the other processes ({_first_line(exc)})") from exc


def finish(together: bool = True) -> None:
    """Leaves the process group; `together` waits for every rank first, so that none closes its
    connections while another still talks on them."""
    if not dist.is_initialized():
        return
    if together:
        with contextlib.suppress(RuntimeError, dist.DistError):  # a peer is gone already: nothing to wait for
            dist.barrier()
    dist.destroy_process_group()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _collective(world: World, what: str, call):
    try:
        return call()
    except (RuntimeError, dist.DistError) as exc:
        raise CharRNNError(
            f"rank {world.rank}: lost the other processes during {what} ({_first_line(exc)}); "
            "the newest checkpoint is intact: resume from it"
        ) from exc


class Agreement:
    """The per-step collective, and the gathers a checkpoint needs."""

    def __init__(self, world: World, device: torch.device):
        self.world = world
        self.device = device if dist.is_initialized() and dist.get_backend() == "nccl" else torch.device("cpu")

    def step(
        self, loss: float, elapsed: float, signal: str | None, ahead: float = 0.0
    ) -> tuple[float, float, str | None, bool, float]:
        """(mean loss, rank 0's elapsed seconds, a signal any rank received, whether every loss was finite,
        rank 0's `ahead`: the seconds it expects the run's end to take)."""
        finite = math.isfinite(loss)
        if not self.world.distributed:
            return loss, elapsed, signal, finite, ahead
        code = SIGNALS.index(signal) + 1 if signal in SIGNALS else 0
        main = self.world.is_main
        values = torch.tensor(
            [
                loss if finite else 0.0,
                elapsed if main else 0.0,
                float(code),
                0.0 if finite else 1.0,
                ahead if main else 0.0,
            ],
            dtype=torch.float64,
            device=self.device,
        )
        reduced = _collective(self.world, "a training step", lambda: (dist.all_reduce(values), values.tolist())[1])
        loss_sum, clock, codes, bad, ahead = reduced
        received = SIGNALS[min(int(codes), len(SIGNALS)) - 1] if codes else None
        return loss_sum / self.world.size, clock, received, bad == 0, ahead

    def total(self, values: list[float]) -> list[float]:
        """Each value summed over the ranks."""
        if not self.world.distributed:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        return _collective(self.world, "validation", lambda: (dist.all_reduce(tensor), tensor.tolist())[1])

    def gather_rows(self, part: torch.Tensor) -> torch.Tensor:
        """Every rank's rows of a (layers, rows, hidden) state, interleaved back into the global stream
        order (rank r holds streams r, r + size, ...)."""
        if not self.world.distributed:
            return part
        local = part.detach().to(self.device).contiguous()
        parts = [torch.empty_like(local) for _ in range(self.world.size)]
        _collective(self.world, "a checkpoint", lambda: dist.all_gather(parts, local))
        stacked = torch.stack(parts, dim=2)  # (layers, rows per rank, ranks, hidden)
        return stacked.reshape(part.shape[0], -1, part.shape[-1]).to(part.device)

    def gather_bytes(self, state: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's copy of a byte tensor of one length (a generator's state)."""
        if not self.world.distributed:
            return [state]
        local = state.to(self.device)
        parts = [torch.empty_like(local) for _ in range(self.world.size)]
        _collective(self.world, "a checkpoint", lambda: dist.all_gather(parts, local))
        return [p.cpu() for p in parts]

    def barrier(self, what: str) -> None:
        if self.world.distributed:
            _collective(self.world, what, dist.barrier)


def rank_seed(seed: int, rank: int) -> int:
    """Rank 0 keeps the run's seed (one process draws as it always has); the others draw apart."""
    return (
        seed
        if rank == 0
        else int(torch.randint(2**62, (1,), generator=torch.Generator().manual_seed(seed * 1009 + rank)))
    )
