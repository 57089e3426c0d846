"""What a run reports: metrics.csv (one row per step), progress on the terminal, the start hints and
the end summary. A progress bar when the output is a terminal, plain log lines otherwise (logs, CI, pipes).
`Reporter` is what the training loop talks to; the rest are its parts.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

LN2 = math.log(2.0)

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
            if metrics.val_loss is not None:  # each validation keeps a line of its own above the bar
                self.bar.write(line, file=self.stream)
            self.bar.set_postfix_str(line, refresh=False)
        elif metrics.step % self.every == 0 or metrics.val_loss is not None:
            self.message(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


WindowProgress = Callable[[Iterable, int], Iterable]  # wraps an iterable of `count` windows (a bar, in the CLI)


def progress_bar(unit: str) -> WindowProgress:
    """A wrapper that shows a bar on stderr while an iterable of known length is read, on a terminal only."""

    def wrap(iterable, total: int):
        return tqdm(iterable, total=total, unit=unit, file=sys.stderr, leave=False, disable=not sys.stderr.isatty())

    return wrap


def step_line(row: StepMetrics, time_budget: float | None = None, symbol: str = "char") -> str:
    line = f"epoch {row.epoch:.2f} step {row.step} | train {row.train_loss:.4f}"
    if row.val_loss is not None:
        line += f" | val {row.val_loss:.4f} nats {row.val_loss / LN2:.4f} bpc"
    line += f" | lr {row.lr:.2e} | {row.chars_per_s:,.0f} {symbol}s/s"
    if time_budget:
        left = max(0, round(time_budget - row.elapsed_s))
        line += f" | {left // 60}m{left % 60:02d}s left"
    return line


def size_hint(params: int, train_chars: int) -> str:
    ratio = params / train_chars
    if ratio < 0.1:
        advice = "a small model for this much text: a wider one (--hidden) would likely learn more, if time allows"
    elif ratio > 10:
        advice = "far more parameters than characters: it may overfit (raise --dropout or lower --hidden)"
    else:
        advice = "a reasonable match; if validation loss ends well above training loss, raise --dropout"
    return f"hint: {ratio:.2g} parameters per training character, {advice}"


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


@dataclass(frozen=True)
class RunSummary:
    """Where a run stopped, for the closing lines."""

    run_dir: Path
    step: int
    reason: str
    checkpoint: Path | None
    val_loss: float | None
    best_val: float | None
    train_loss: float | None
    train_loss_at_best: float | None


class Reporter:
    """Where a run's figures go: a row per step into metrics.csv, lines or a bar on the terminal."""

    def __init__(
        self,
        metrics_path: Path,
        max_steps: int | None,
        step: int,
        eval_every: int,
        resumed: bool,
        stream=None,
        tensorboard=None,  # a TensorBoardLog (tensorboard.py), or None
        time_budget: float | None = None,
    ):
        self.time_budget = time_budget
        self.symbol = "char"  # "byte" for a byte-level run: what the figures count (start says)
        self.progress = Progress(max_steps, step, every=max(1, eval_every // 10), stream=stream)
        self.csv = MetricsCSV(metrics_path, resume_from_step=step if resumed else None)
        self.tensorboard = tensorboard

    def message(self, text: str) -> None:
        self.progress.message(text)

    def start(
        self, verb: str, params: int, train_chars: int, val_chars: int, vocab_size: int, device, symbol: str = "char"
    ) -> None:
        self.symbol = symbol
        named = "characters" if symbol == "char" else f"{symbol}s"
        self.message(
            f"{verb}: {params:,} parameters, {train_chars:,} training {named}, {val_chars:,} validation, "
            f"vocabulary {vocab_size}, device {device}"
        )
        self.message(size_hint(params, train_chars))

    def row(self, row: StepMetrics) -> None:
        self.csv.write(row)
        if self.tensorboard is not None:
            self.tensorboard.row(row)
        self.progress.step(row, step_line(row, self.time_budget, self.symbol))

    def flush(self) -> None:
        self.csv.flush()

    def finish(self, end: RunSummary) -> None:
        if self.tensorboard is not None:
            self.tensorboard.finish(end.best_val, end.step)
        if end.reason in ("SIGINT", "SIGTERM"):
            self.message(f"stopped by {end.reason} at step {end.step}; saved {end.checkpoint}")
            self.message(f"resume with: charrnn train --resume {end.run_dir}")
            return
        why = "patience: validation stopped improving" if end.reason == "patience" else end.reason
        summary = f"done at step {end.step} ({why}); saved {end.checkpoint}"
        if end.val_loss is not None:
            summary += f"; validation {end.val_loss:.4f} nats/{self.symbol} ({end.val_loss / LN2:.4f} bpc)"
        self.message(summary)
        hint = rising_validation_hint(end.val_loss, end.best_val, end.train_loss, end.train_loss_at_best)
        if hint:
            self.message(hint)

    def close(self) -> None:
        self.csv.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        self.progress.close()


class SilentReporter:
    """What ranks other than 0 report to: nothing (rank 0 alone prints and writes metrics.csv)."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None
