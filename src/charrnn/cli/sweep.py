"""`charrnn sweep`: a grid of flags trained with one budget each, the best named."""

from __future__ import annotations

from pathlib import Path

from ..data.splits import split_flag
from ..runs.listing import table_lines
from ..settings import duration
from .common import terminal_width


def add_sweep(commands) -> None:
    p = commands.add_parser("sweep", help="train every variant of a grid of flags with one budget; name the best")
    p.add_argument("texts", nargs="+", metavar="TEXT", help="text files to train on")
    p.add_argument("--out", help="the sweep's directory (default sweeps/<first text's name>)")
    p.add_argument("--budget", type=duration, required=True, help="training time per variant, e.g. 5m")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        required=True,
        metavar="FLAG=V1,V2",
        help="one flag and the values to try (repeat for more flags: the grid is every combination)",
    )
    p.add_argument("--random", action="store_true", help="draw --trials variants from the grid at random")
    p.add_argument("--trials", type=int, help="variants to draw with --random")
    p.add_argument("--seed", type=int, default=1, help="seed of the random draw (default 1)")
    p.add_argument(
        "--workers", type=int, default=1, help="variants at once; more than 1 times each step and trains by steps"
    )
    p.add_argument("--ensemble", type=int, default=0, metavar="K", help="also score the best K averaged")
    p.add_argument(
        "--split",
        type=split_flag,
        metavar="TRAIN,VAL,TEST",
        help="every variant's training, validation and test parts (as train --split); the choice is scored on the test part",
    )
    p.set_defaults(run=cmd_sweep)


def cmd_sweep(args) -> int:
    from ..training.sweeps import SweepConfig, parse_set, sweep

    config = SweepConfig(
        texts=tuple(args.texts),
        out=args.out or str(Path("sweeps") / Path(args.texts[0]).stem),
        budget=args.budget,
        sets=tuple(parse_set(text) for text in args.sets),
        trials=args.trials,
        random=args.random,
        seed=args.seed,
        workers=args.workers,
        ensemble=args.ensemble,
        split=args.split,
    )
    result = sweep(config, report=lambda line: print(line, flush=True))
    print()
    for line in table_lines(result.rows, terminal_width()):
        print(line)
    best = result.rows[0]
    val = "no validation" if best.best_val_loss is None else f"validation {best.best_val_loss:.4f} nats/char"
    print(f"\nbest: {result.best} ({val})")
    if result.ensemble_val is not None:
        print(f"the best {args.ensemble} averaged: validation {result.ensemble_val:.4f} nats/char")
    for which, loss in result.test.items():
        print(f"test part (--split {args.split}, seen by no choice), {which}: {loss:.4f} nats/symbol")
    return 0
