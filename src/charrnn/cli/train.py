"""`charrnn train` and `charrnn demo`: starting and resuming runs from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.corpus import find_anna
from ..errors import CharRNNError, flag_name
from ..generate.sampler import Sampler
from ..model.network import MODEL_FLAGS, ModelConfig
from ..runs.rundir import RunDir, load_model
from ..settings import add_flags, duration
from ..training.budget import SHAPING_FLAGS
from ..training.config import TrainConfig
from ..training.runner import resume, train


def add_train(commands) -> None:
    p = commands.add_parser(
        "train",
        help="train a model on text files",
        description="Train a model on text files. With a time budget (5 minutes when no stop is given) and none of "
        f"{', '.join(map(flag_name, SHAPING_FLAGS))}, it first times a few settings' "
        "training steps here (at most 3% of the budget) and trains the one that budget suits best.",
    )
    _add_train_flags(p)
    p.set_defaults(run=cmd_train)


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    """The flags of `train`: every declared setting of the model and of training (settings.py), whose
    defaults are suppressed so that a resume can tell which flags the user actually gave."""
    p.add_argument("texts", nargs="*", metavar="TEXT", help="text files to train on (UTF-8 unless --encoding)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its newest checkpoint")
    add_flags(p, ModelConfig, suppress=True)
    add_flags(p, TrainConfig, suppress=True)
    repeatable(p, "--val-text", "val_texts", "FILE",
               "validate on this file (text or a prepared corpus) instead of the training text's tail (repeat for more)")  # fmt: skip
    repeatable(p, "--teacher", "teachers", "RUN",
               "also learn from this trained run's next-character distribution (repeat: their mean); see --distill-mix")  # fmt: skip


def repeatable(p: argparse.ArgumentParser, flag: str, dest: str, metavar: str, help: str) -> None:
    """A flag given once per value, gathered into the setting `dest` (left out when never given)."""
    p.add_argument(flag, dest=dest, action="append", metavar=metavar, default=argparse.SUPPRESS, help=help)


def cmd_train(args) -> int:
    given = {k: v for k, v in vars(args).items() if k not in ("command", "debug", "resume", "run")}
    if not given.get("texts"):
        given.pop("texts", None)
    model_changes = {k: given.pop(k) for k in list(given) if k in MODEL_FLAGS}
    if args.resume:
        if "out" in given and Path(given.pop("out")).resolve() != Path(args.resume).resolve():
            raise CharRNNError("--out and --resume name different directories; give only --resume")
        for key in ("texts", "val_texts"):
            if key in given:
                given[key] = [str(Path(t).resolve()) for t in given[key]]
        result = resume(args.resume, {**given, **model_changes}, keep_freed_memory=True)
        return result.exit_code
    if "texts" not in given:
        raise CharRNNError("give one or more text files to train on (or --resume RUN_DIR)")
    given.setdefault("out", str(Path("runs") / Path(given["texts"][0]).stem))
    config = TrainConfig(**given, model=ModelConfig(**model_changes))
    shaped = (given.keys() | model_changes.keys()) & {*SHAPING_FLAGS, "teachers"}  # a probe times no teacher
    return train(config, keep_freed_memory=True, choose_for_budget=not shaped).exit_code


def add_demo(commands) -> None:
    p = commands.add_parser("demo", help="train the default model on Anna Karenina and print a sample")
    p.add_argument("--out", default="runs/anna", help="run directory (default runs/anna)")
    p.add_argument("--time-budget", type=duration, default=None, help="training time (default 5m)")
    p.add_argument("--prime", default="Far", help="text the sample starts from")
    p.add_argument("--length", type=int, default=300, help="characters to sample")
    p.set_defaults(run=cmd_demo)


def cmd_demo(args) -> int:
    out = Path(args.out)
    if RunDir(out).checkpoints():
        print(f"{out} already holds a trained run; sampling from it (delete it to train again)")
    else:
        extra = {"time_budget": args.time_budget} if args.time_budget else {}
        config = TrainConfig(texts=(str(find_anna()),), out=str(out), **extra)
        result = train(config, keep_freed_memory=True, choose_for_budget=True)
        if result.exit_code:
            return result.exit_code
    sampler = Sampler(*load_model(out))
    text = sampler.generate(args.prime, args.length, temperature=0.8, top_k=5, seed=1)
    print(f"\n--- a sample, primed with {args.prime!r} ---\n{args.prime}{text}")
    return 0
