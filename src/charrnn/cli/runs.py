"""`charrnn info`, `charrnn runs` and `charrnn plot`: what runs hold, side by side."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from ..data.prepared import is_prepared
from ..data.splits import PARTS
from ..data.vocab import Vocab
from ..errors import CharRNNError
from ..model.network import ModelConfig, parameters_of
from ..runs import checkpoint as ckpt
from ..runs.listing import cell, find_runs, table_lines
from ..runs.rundir import RUN_FILE, RunDir
from ..training.config import TrainConfig
from . import prepare
from .common import terminal_width


def add_info(commands) -> None:
    p = commands.add_parser("info", help="what a run, a checkpoint or a prepared corpus holds")
    p.add_argument("path", help="a run directory, one checkpoint file or a prepared corpus")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=cmd_info)


def run_info(path: Path) -> dict:
    """What `charrnn info --json` prints; scripts rely on its keys."""
    run_dir = RunDir.of(path)
    if path.is_dir():
        checkpoints = run_dir.checkpoints()
        if not checkpoints and not run_dir.has_run_file():
            raise CharRNNError(f"{path}: not a charrnn run directory (no {RUN_FILE}, no checkpoints)")
    elif path.exists():
        checkpoints = [ckpt.open_checkpoint(path)]
    else:
        raise CharRNNError(f"{path}: no such run directory or checkpoint")
    run = run_dir.read("") if run_dir.has_run_file() else {}
    newest = checkpoints[-1] if checkpoints else None
    model_json = newest.meta["model"] if newest else run.get("train", {}).get("model", {})
    vocab = Vocab.from_json(run.get("vocab") or newest.meta["vocab"])
    config = ModelConfig.from_json(model_json).for_vocab(len(vocab))
    params = parameters_of(config)
    vals = [c.val_loss for c in checkpoints if c.val_loss is not None]
    return {
        "path": str(path),
        "config": TrainConfig.from_json(run["train"]).flat() if run else config.to_json(),
        "step": newest.step if newest else 0,
        "params": params,
        "vocab_size": config.vocab_size,
        "vocab": "".join(vocab.chars),
        "symbol": vocab.symbol,
        "best_val_loss": min(vals) if vals else None,
        "train_loss": newest.meta.get("train_loss") if newest else None,
        "elapsed_s": newest.meta.get("elapsed_s") if newest else None,
        "environment": run.get("environment"),
        "choice": run.get("choice"),  # what the time budget chose, when it chose (budget.py)
        "checkpoints": [{"path": str(c.tensors_path), "step": c.step, "val_loss": c.val_loss} for c in checkpoints],
        **run_dir.evals(),  # {"test": {"loss", "bpc", "symbols", ...}} once `charrnn eval --split test` ran
    }


def cmd_info(args) -> int:
    if is_prepared(args.path):
        return prepare.info(args.path, args.json)
    info = run_info(Path(args.path))
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"{info['path']}: step {info['step']}, {info['params']:,} parameters, vocabulary {info['vocab_size']}")
    settings = ", ".join(f"{k}={cell(v) if k not in ('texts', 'out') else v}" for k, v in info["config"].items())
    print(textwrap.fill(settings, terminal_width() or 100, initial_indent="config: ", subsequent_indent="  "))
    if info["choice"]:
        print(
            f"chosen for a {info['choice']['budget']:g} s budget: {info['choice']['setting']}, {info['choice']['reason']}"
        )
    unit = info["symbol"]
    if info["best_val_loss"] is not None:
        print(f"best validation loss: {info['best_val_loss']:.4f} nats/{unit}")
    for part in PARTS:
        if part in info:
            figure = info[part]
            print(f"{part} ({figure['checkpoint']}): {figure['loss']:.4f} nats/{unit}, {figure['bpc']:.4f} bits/{unit} "
                  f"over {figure['symbols']:,} {unit}s")  # fmt: skip
    for c in info["checkpoints"]:
        val = "" if c["val_loss"] is None else f"  val {c['val_loss']:.4f}"
        print(f"  step {c['step']:>7}{val}  {c['path']}")
    return 0


def add_runs(commands) -> None:
    p = commands.add_parser("runs", help="a table of the runs under a directory, best validation first")
    p.add_argument("root", metavar="DIR", help="a directory holding run directories (at any depth)")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(run=cmd_runs)


def cmd_runs(args) -> int:
    rows = find_runs(args.root)
    if args.json:
        print(json.dumps([row.to_json() for row in rows], indent=1))
        return 0
    for line in table_lines(rows, terminal_width()):
        print(line)
    return 0


def add_plot(commands) -> None:
    p = commands.add_parser("plot", help="training and validation curves of runs, on one figure (PNG or SVG)")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    p.add_argument("-o", "--out", default="curves.png", help="the figure to write, .png or .svg (default curves.png)")
    p.add_argument("--x", choices=("step", "time", "epoch"), default="step", help="the horizontal axis (default step)")
    p.add_argument("--bpc", action="store_true", help="bits per character instead of nats")
    p.set_defaults(run=cmd_plot)


def cmd_plot(args) -> int:
    from ..runs.plot import plot_runs

    for note in plot_runs(args.runs, args.out, args.x, args.bpc):
        print(note)
    print(f"wrote {args.out}")
    return 0
