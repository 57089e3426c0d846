"""`charrnn ngram`: the interpolated Kneser–Ney baseline over a text's (or a run's) own parts."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

from ..data.dataset import prepare_data
from ..data.splits import split_flag
from ..data.vocab import Vocab
from ..errors import CharRNNError
from ..model.ngram import evaluate_ngram
from ..runs.rundir import RunDir
from ..training.config import TrainConfig

MAX_ORDER = 40


def add_ngram(commands) -> None:
    p = commands.add_parser(
        "ngram",
        help="an n-gram baseline (interpolated Kneser-Ney) fitted on the training part, scored on the others",
    )
    p.add_argument(
        "texts",
        nargs="+",
        metavar="TEXT",
        help="text files (or a prepared corpus), split as train splits them; or one run directory: its own text, "
        "split as it was trained",
    )
    p.add_argument("--order", type=int, default=5, help=f"symbols per n-gram, 1 to {MAX_ORDER} (default 5)")
    p.add_argument("--split", type=split_flag, metavar="TRAIN,VAL,TEST", help="as train --split")
    p.add_argument("--val-fraction", type=float, default=0.1, help="as train --val-fraction (default 0.1)")
    p.add_argument("--bytes", action="store_true", help="as train --bytes: one symbol per byte")
    p.add_argument("--encoding", default="utf-8", help="text encoding of the files")
    p.add_argument("--errors", default="strict", help="what to do with undecodable bytes: strict, replace, ignore")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=cmd_ngram)


def cmd_ngram(args) -> int:
    if not 1 <= args.order <= MAX_ORDER:
        raise CharRNNError(f"--order must be in [1, {MAX_ORDER}], got {args.order}")
    config, vocab = _config(args)
    data = prepare_data(config, vocab)
    start = time.perf_counter()
    parts = {"valid": data.val_ids, "test": data.test_ids}
    results = evaluate_ngram(data.train_ids, parts, args.order, len(data.vocab))
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    unit = data.vocab.symbol
    if args.json:
        out = {"order": args.order, "symbol": unit, "train_symbols": len(data.train_ids)}
        print(json.dumps({**out, **{name: r.to_json() for name, r in results.items()}, "seconds": seconds}))
        return 0
    print(
        f"{args.order}-gram (interpolated Kneser-Ney) over {unit}s, fitted on {len(data.train_ids):,} training "
        f"{unit}s in {seconds:.1f} s (peak memory {peak_gb:.2f} GB)"
    )
    for name, r in results.items():
        print(f"{name}: {r.loss:.4f} nats/{unit}, {r.bpc:.4f} bits/{unit} over {r.symbols:,} {unit}s")
    if not results:
        print("no validation or test part to score (--val-fraction 0?)")
    return 0


def _config(args) -> tuple[TrainConfig, Vocab | None]:
    """The texts and their split: the run's own, or as the flags say (as train reads them)."""
    run_dir = RunDir(args.texts[0])
    if len(args.texts) == 1 and Path(args.texts[0]).is_dir() and run_dir.has_run_file():
        if args.split or args.bytes or args.val_fraction != 0.1:
            raise CharRNNError(
                f"{run_dir} is a run: its text is split as it was trained; drop --split, --bytes, --val-fraction"
            )
        run = run_dir.read("")
        return TrainConfig.from_json(run["train"]), Vocab.from_json(run["vocab"])
    flags = dict(split=args.split, bytes=args.bytes, val_fraction=args.val_fraction)
    flags.update(encoding=args.encoding, errors=args.errors)
    # batch and window of one: the n-gram needs no more text than two symbols of training
    return TrainConfig(texts=tuple(args.texts), batch_size=1, seq_len=1, **flags), None
