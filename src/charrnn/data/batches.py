"""`BatchSource`: the notebook's streams x steps layout over an encoded text, with its position.

The ids are cut into `batch_size` contiguous streams; batch k holds window k of every stream, so
row i of batch k+1 continues row i of batch k and the recurrent state can be carried across
batches. Every target is the true next character: targets are the same streams shifted by one,
never wrapped. The final window of an epoch may be shorter than `seq_len` so that each stream is
used to its end; only the last `(len(ids) - 1) % batch_size` characters, too few to fill a row,
go unused.

With `offset_seed` set, every epoch after the first lays the streams out from a different start,
drawn from the seed and the epoch number in [0, one stream's length): the characters before it sit
that epoch out. Without it every epoch repeats the same streams, so each character is always reached
by a state carried from the same stretch of text, and always at the same place in its window.

With `reset_rate` set, each stream's carried state is also zeroed before a window with that chance,
drawn from `reset_seed`, the epoch and the window (so a resume and every rank see the same resets).
Without it the zero state, which every prime is read from, follows only the streams' fixed starts, and
a model learns what follows those few stretches of text instead of "a text may start here".

The source only slices an id array (numpy or a memory map) per batch, so it can be fed from a
pre-encoded corpus on disk and split across processes with `shard` without touching the loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import CharRNNError


@dataclass(frozen=True)
class Batch:
    inputs: torch.Tensor  # (streams, steps) int64
    targets: torch.Tensor  # (streams, steps) int64
    epoch: int  # 0-based
    window: int  # index of this window in its epoch
    resets: torch.Tensor | None = None  # (streams,) bool: rows whose carried state starts from zero here

    @property
    def starts_epoch(self) -> bool:
        return self.window == 0


class BatchSource:
    def __init__(
        self,
        ids: np.ndarray,
        batch_size: int,
        seq_len: int,
        device: str | torch.device = "cpu",
        offset_seed: int | None = None,
        reset_rate: float = 0.0,
        reset_seed: int = 0,
    ):
        if batch_size <= 0 or seq_len <= 0:
            raise CharRNNError("batch_size (--batch-size) and seq_len (--seq-len) must be positive")
        if len(ids) < 2:
            raise CharRNNError("text too short: need at least two characters")
        if batch_size >= len(ids):
            raise CharRNNError(f"text too short: {len(ids)} characters cannot fill {batch_size} streams")
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.device = torch.device(device)
        self.offset_seed = offset_seed
        self.reset_rate, self.reset_seed = reset_rate, reset_seed
        self._ids = ids
        self._streams = batch_size  # streams in the layout; a shard yields every k-th of them
        self._rows = slice(None)
        self._full_stream_len = (len(ids) - 1) // batch_size
        self._lay_out(0)

    def offset(self, epoch: int) -> int:
        """Where `epoch`'s streams start in the text: 0 for the first epoch and without a seed."""
        if self.offset_seed is None or epoch == 0:
            return 0
        return int(np.random.default_rng([self.offset_seed, epoch]).integers(self._full_stream_len))

    def _lay_out(self, epoch: int) -> None:
        offset = self.offset(epoch)
        self.stream_len = (len(self._ids) - 1 - offset) // self._streams
        end = offset + self._streams * self.stream_len
        self._inputs = self._ids[offset:end].reshape(self._streams, self.stream_len)[self._rows]
        self._targets = self._ids[offset + 1 : end + 1].reshape(self._streams, self.stream_len)[self._rows]
        # The stream-less remainder (last input of the final row onwards); a shard has none.
        self._tail = self._ids[end:] if self._rows == slice(None) else self._ids[:0]
        self.epoch, self.window = epoch, 0

    @property
    def windows_per_epoch(self) -> int:
        return -(-self.stream_len // self.seq_len)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64)).to(self.device)

    def window_at(self, window: int) -> tuple[torch.Tensor, torch.Tensor]:
        cols = slice(window * self.seq_len, min((window + 1) * self.seq_len, self.stream_len))
        return self._tensor(self._inputs[:, cols]), self._tensor(self._targets[:, cols])

    def resets(self, epoch: int, window: int) -> torch.Tensor | None:
        """The rows whose state is zeroed before `window` of `epoch` (None: none; every row starts an epoch)."""
        if not self.reset_rate or window == 0:
            return None
        drawn = np.random.default_rng([self.reset_seed, epoch, window]).random(self._streams) < self.reset_rate
        rows = drawn[self._rows]
        return torch.from_numpy(rows).to(self.device) if rows.any() else None

    def next_batch(self) -> Batch:
        """The batch at the current position; the position then moves on (to the next epoch at the end)."""
        inputs, targets = self.window_at(self.window)
        batch = Batch(inputs, targets, self.epoch, self.window, self.resets(self.epoch, self.window))
        self.window += 1
        if self.window == self.windows_per_epoch:
            self._lay_out(self.epoch + 1)
        return batch

    def epoch_batches(self):
        """Every window of one epoch in order, without moving the position (for evaluation)."""
        for window in range(self.windows_per_epoch):
            yield self.window_at(window)

    def remainder(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The characters left after the last stream, as a (1, r) batch continuing the last row."""
        if len(self._tail) < 2:
            return None
        return self._tensor(self._tail[:-1][None, :]), self._tensor(self._tail[1:][None, :])

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "window": self.window}

    def load_state_dict(self, state: dict) -> None:
        epoch, window = int(state["epoch"]), int(state["window"])
        current = self.state_dict()
        if epoch >= 0:
            self._lay_out(epoch)  # the epoch's layout decides how many windows it has
        if not (epoch >= 0 and 0 <= window < self.windows_per_epoch):
            self._lay_out(current["epoch"])
            self.window = current["window"]
            raise CharRNNError(f"saved data position {state} does not fit this text and batch layout")
        self.window = window

    def shard(self, rank: int, world_size: int) -> BatchSource:
        """This process's share of the streams: rows rank, rank + world_size, ... (same windows)."""
        if not 0 <= rank < world_size or self.batch_size % world_size:
            raise CharRNNError(
                f"batch_size (--batch-size) {self.batch_size} does not split over {world_size} processes"
            )
        shard = object.__new__(BatchSource)
        shard.__dict__.update(self.__dict__)
        shard.batch_size = self.batch_size // world_size
        shard._rows = slice(rank, None, world_size)
        shard._lay_out(self.epoch)
        shard.window = self.window
        return shard
