"""The runs under a directory, one row each: what `charrnn runs` prints, best validation first.

Everything is read from run.json and the checkpoints' JSON, never under the run's lock, so listing
runs never disturbs one that is training.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import CharRNNError
from ..model.network import parameters_of
from ..training.config import TrainConfig
from .rundir import RUN_FILE, RunDir, RunLock

FINISHED = ("max_steps", "epochs", "time_budget", "patience")
UNCOMPARED = ("out", "texts")  # differ between any two runs, or say nothing a table column could


@dataclass(frozen=True)
class RunRow:
    name: str  # the run's path under the listed directory
    flags: dict  # every flag, flat (model flags beside training flags)
    params: int
    step: int
    epoch: float | None
    elapsed_s: float | None
    last_val_loss: float | None
    best_val_loss: float | None
    state: str  # finished, stopped or running
    reason: str | None  # why it finished or stopped, as saved with its last checkpoint
    test_loss: float | None = None  # what `charrnn eval --split test` measured, once it has

    def to_json(self) -> dict:
        return asdict(self)


def find_runs(root: str | os.PathLike) -> list[RunRow]:
    """Every run at or under `root`, sorted by best validation loss (runs without one last)."""
    root = Path(root)
    if not root.is_dir():
        raise CharRNNError(f"{root}: no such directory")
    paths = sorted({p.parent for p in root.rglob(RUN_FILE)})
    rows = [row for row in (_row(root, p) for p in paths) if row is not None]
    if not rows:
        raise CharRNNError(f"{root}: no charrnn runs here (no {RUN_FILE} at or below it)")
    return sorted(rows, key=lambda r: (r.best_val_loss is None, r.best_val_loss or 0.0, r.name))


def differing_flags(rows: list[RunRow]) -> list[str]:
    """The flags whose values are not the same in every row: what tells the runs apart."""
    names = sorted({name for row in rows for name in row.flags} - set(UNCOMPARED))
    return [n for n in names if len({repr(row.flags.get(n)) for row in rows}) > 1]


def _row(root: Path, path: Path) -> RunRow | None:
    run_dir = RunDir(path)
    try:
        config = TrainConfig.from_json(run_dir.read("")["train"])
    except (CharRNNError, KeyError, TypeError):
        return None  # not readable as a run: left out rather than failing the whole table
    checkpoints = run_dir.checkpoints()
    newest = checkpoints[-1].meta if checkpoints else {}
    vals = [c.val_loss for c in checkpoints if c.val_loss is not None]
    best = newest.get("best_val_loss")
    best = min([*vals, best]) if best is not None else min(vals, default=None)
    running = RunLock.holder(path) is not None
    reason = None if running else newest.get("stopped_by")
    state = "running" if running else "finished" if reason in FINISHED else "stopped"
    params = parameters_of(config.model)
    try:
        test_loss = run_dir.evals().get("test", {}).get("loss")
    except (CharRNNError, AttributeError):
        test_loss = None  # an unreadable evals.json leaves the column empty, not the table
    return RunRow(
        name=str(path.relative_to(root)) if path != root else path.name,
        flags=config.flat(),
        params=params,
        step=int(newest.get("step", 0)),
        epoch=newest.get("epoch"),
        elapsed_s=newest.get("elapsed_s"),
        last_val_loss=vals[-1] if vals else None,
        best_val_loss=best,
        test_loss=test_loss,
        state=state,
        reason=reason,
    )


def table_lines(rows: list[RunRow], width: int | None = None) -> list[str]:
    """The rows as an aligned text table, with a column for each flag that differs between them (rounded,
    and none that is empty in every row); within `width` characters, flag columns are left out from the
    last and a closing line names them."""
    varying = [n for n in differing_flags(rows) if any(row.flags.get(n) is not None for row in rows)]

    def loss(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    tested = any(row.test_loss is not None for row in rows)
    fixed = [
        [f"{row.params:,}", str(row.step), "-" if row.epoch is None else f"{row.epoch:.2f}",
         "-" if row.elapsed_s is None else f"{row.elapsed_s:.0f}s", loss(row.last_val_loss),
         loss(row.best_val_loss), *([loss(row.test_loss)] if tested else []),
         row.state + (f" ({row.reason})" if row.reason else "")]
        for row in rows
    ]  # fmt: skip
    header = ["params", "steps", "epochs", "time", "last val", "best val", *(["test"] if tested else []), "state"]
    flags = {name: [cell(row.flags.get(name)) for row in rows] for name in varying}
    while True:
        table = [["run", *flags, *header]]
        table += [[row.name, *(column[i] for column in flags.values()), *fixed[i]] for i, row in enumerate(rows)]
        lines = _aligned(table)
        if width is None or not flags or max(map(len, lines)) <= width:
            break
        flags.popitem()
    left_out = varying[len(flags) :]
    if left_out:
        lines.append(f"({len(left_out)} more flags differ: {', '.join(left_out)}; --json shows them all)")
    return lines


def cell(value) -> str:
    """A flag's value in a table: rounded, a path by its end, nothing as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        value = ",".join(map(str, value))
    text = str(value)
    return text if len(text) <= 24 else "…" + text[-23:]


def _aligned(table: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table]
