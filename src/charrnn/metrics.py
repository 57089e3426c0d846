"""What a run reports: metrics.csv (one row per step) and progress on the terminal.

A progress bar when the output is a terminal, plain log lines otherwise (logs, CI, pipes).
"""

from __future__ import annotations

import csv
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

COLUMNS = ("step", "epoch", "elapsed_s", "train_loss", "val_loss", "lr", "chars_per_s")


@dataclass(frozen=True)
class StepMetrics:
    step: int
    epoch: float  # fractional: 1.5 is half-way through the second epoch
    elapsed_s: float
    train_loss: float
    val_loss: float | None
    lr: float
    chars_per_s: float

    def row(self) -> list[str]:
        val = "" if self.val_loss is None else f"{self.val_loss:.6f}"
        return [
            str(self.step),
            f"{self.epoch:.4f}",
            f"{self.elapsed_s:.2f}",
            f"{self.train_loss:.6f}",
            val,
            f"{self.lr:.6g}",
            f"{self.chars_per_s:.0f}",
        ]


class MetricsCSV:
    """Appends rows to RUN/metrics.csv; on resume, first drops rows after the checkpoint's step."""

    def __init__(self, path: Path, resume_from_step: int | None = None):
        self.path = path
        if resume_from_step is not None and path.exists():
            self._truncate_after(resume_from_step)
        new = not path.exists() or path.stat().st_size == 0
        self._file = open(path, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(COLUMNS)

    def _truncate_after(self, step: int) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [lines[0]] if lines else []
        for line in lines[1:]:
            fields = next(csv.reader(io.StringIO(line)), [])
            # A line cut short by a crash has too few fields or no newline: drop it.
            if line.endswith("\n") and len(fields) == len(COLUMNS) and int(fields[0]) <= step:
                kept.append(line)
        self.path.write_text("".join(kept), encoding="utf-8")

    def write(self, metrics: StepMetrics) -> None:
        self._writer.writerow(metrics.row())

    def flush(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def read_metrics(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


class Progress:
    """Prints training progress: a tqdm bar on a terminal, a plain line every `every` steps elsewhere."""

    def __init__(self, total_steps: int | None, initial_step: int, every: int, stream=None):
        self.stream = stream or sys.stdout
        self.every = every
        self.bar = None
        if self.stream.isatty():
            self.bar = tqdm(total=total_steps, initial=initial_step, unit="step", file=self.stream, leave=True)

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def step(self, metrics: StepMetrics, line: str) -> None:
        if self.bar is not None:
            self.bar.update(metrics.step - self.bar.n)
            self.bar.set_postfix_str(line, refresh=False)
        elif metrics.step % self.every == 0 or metrics.val_loss is not None:
            self.message(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
