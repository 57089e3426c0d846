"""`--tensorboard DIR`: a run's curves as TensorBoard scalars, and at its end its flags with its best
validation loss (the hyperparameters tab), all in DIR/<run name> so that `tensorboard --logdir DIR`
shows runs side by side. A resumed run purges what was logged after its checkpoint, so no step is
drawn twice. The `tensorboard` extra.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CharRNNError
from ..runs.metrics import StepMetrics

INSTALL_HINT = "--tensorboard needs the tensorboard extra: pip install -e '.[tensorboard]'"


def check_available() -> None:
    """Fails before a run starts, rather than at its first row."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as exc:
        raise CharRNNError(INSTALL_HINT) from exc


class TensorBoardLog:
    def __init__(self, root: str, run_name: str, flags: dict, step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.flags = {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in flags.items()}
        self.writer = SummaryWriter(log_dir=str(Path(root) / run_name), purge_step=step + 1 if step else None)

    def row(self, row: StepMetrics) -> None:
        self.writer.add_scalar("loss/train", row.train_loss, row.step)
        if row.val_loss is not None:
            self.writer.add_scalar("loss/validation", row.val_loss, row.step)
        self.writer.add_scalar("lr", row.lr, row.step)
        self.writer.add_scalar("chars_per_s", row.chars_per_s, row.step)

    def finish(self, best_val: float | None, step: int) -> None:
        metrics = {"hparams/best_val_loss": best_val if best_val is not None else float("nan")}
        self.writer.add_hparams(self.flags, metrics, run_name=".", global_step=step)  # ".": beside the scalars

    def close(self) -> None:
        self.writer.close()
