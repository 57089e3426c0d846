"""`charrnn plot`: training and validation loss of one or more runs on one figure (the `plot` extra).

Read from each run's metrics.csv; the best checkpoint is marked. A resumed run's rows are already in
step order (the CSV drops rows after the checkpoint it resumed from), and any repeated step keeps
its last row.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import CharRNNError
from .metrics import LN2, read_metrics
from .rundir import RunDir

INSTALL_HINT = "charrnn plot needs the plot extra: pip install -e '.[plot]'"
AXES = {"step": ("step", "step"), "time": ("elapsed_s", "training time (s)"), "epoch": ("epoch", "epoch")}
FORMATS = (".png", ".svg")


def _curves(path: Path) -> list[dict]:
    run_dir = RunDir(path)
    if not run_dir.metrics_file.exists():
        raise CharRNNError(f"{path}: no metrics.csv (is it a charrnn run directory?)")
    rows = {int(row["step"]): row for row in read_metrics(run_dir.metrics_file) if row.get("step")}
    if not rows:
        raise CharRNNError(f"{path}: metrics.csv holds no rows yet; nothing to plot")
    return [rows[step] for step in sorted(rows)]


def plot_runs(
    paths: Sequence[str | os.PathLike], out: str | os.PathLike, x: str = "step", bpc: bool = False
) -> list[str]:
    """Draws the runs' curves into `out` (PNG or SVG, by its suffix); returns notes for the user
    (a run without validation says so)."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise CharRNNError(f"{out}: the figure's name must end in {' or '.join(FORMATS)}")
    if x not in AXES:
        raise CharRNNError(f"--x must be one of {', '.join(AXES)}, got {x!r}")
    curves = {Path(p): _curves(Path(p)) for p in paths}
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError as exc:
        raise CharRNNError(INSTALL_HINT) from exc
    column, label = AXES[x]
    scale, unit = (1 / LN2, "bits/char") if bpc else (1.0, "nats/char")
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    notes = []
    for index, (path, rows) in enumerate(curves.items()):
        colour = f"C{index}"
        xs = [float(r[column]) for r in rows]
        axes.plot(xs, [float(r["train_loss"]) * scale for r in rows], color=colour, alpha=0.45, lw=1,
                  label=f"{path.name} train")  # fmt: skip
        val = [(float(r[column]), float(r["val_loss"]) * scale) for r in rows if r.get("val_loss")]
        if not val:
            notes.append(f"{path}: no validation loss (trained with --val-fraction 0); its training curve alone")
            continue
        axes.plot(*zip(*val, strict=True), color=colour, lw=2, marker=".", label=f"{path.name} validation")
        best = RunDir(path).best()
        at = next((r for r in rows if int(r["step"]) == best.step), None) if best else None
        if at is not None:
            axes.plot(float(at[column]), best.val_loss * scale, marker="*", ms=14, color=colour, ls="none",
                      label=f"{path.name} best {best.val_loss * scale:.3f} (step {best.step})")  # fmt: skip
    axes.set_xlabel(label)
    axes.set_ylabel(f"loss ({unit})")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    try:
        figure.savefig(out)
    finally:
        plt.close(figure)
    return notes
