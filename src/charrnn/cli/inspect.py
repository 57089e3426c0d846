"""`charrnn cells`: which units of a trained model track what in a text; `charrnn inspect`: all of it, and
more, in one HTML file."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..data.corpus import read_text
from ..data.dataset import run_part
from ..errors import CharRNNError
from ..generate.sampler import Sampler
from ..inspect.cells import THRESHOLD, best_cells, gate_saturation
from ..inspect.detectors import BUILT_IN, parse_detector
from ..inspect.report import report_data, write_report
from ..inspect.trace import trace
from ..inspect.versus import versus
from ..model.ngram import kneser_ney_log_probs
from ..runs.rundir import RunDir, load_model
from .common import add_model_flags, load
from .ngram import MAX_ORDER

DEFAULT_CHARS = 20_000


def add_cells(commands) -> None:
    p = commands.add_parser("cells", help="the units that track quotes, brackets, line length, ... in a text")
    add_model_flags(p)
    p.add_argument("text", nargs="?", metavar="TEXT", help="a text file to read (default: the run's validation text)")
    p.add_argument(
        "--detect",
        action="append",
        default=[],
        metavar="NAME=REGEX",
        help="a detector of your own: 1 inside every match of REGEX (repeat for more)",
    )
    p.add_argument("--top", type=int, default=3, help="units shown per detector (default 3)")
    p.add_argument("--chars", type=int, default=DEFAULT_CHARS, help=f"characters read (default {DEFAULT_CHARS:,})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=cmd_cells)


def _traced(args):
    """The model, its vocabulary, its name, its trace over the text asked for, and the detectors."""
    if args.top <= 0 or args.chars < 2:
        raise CharRNNError("--top must be positive and --chars at least 2")
    detectors = dict(BUILT_IN)
    detectors.update(parse_detector(spec) for spec in args.detect)
    model, vocab, name = load(args)
    if args.text:
        text = read_text(args.text, as_bytes=vocab.byte_level)[: args.chars]
    else:
        text = vocab.decode(run_part(args.path)[: args.chars])
    return model, vocab, name, trace(model, vocab, text), detectors


def cmd_cells(args) -> int:
    _, _, name, traced, detectors = _traced(args)
    text = traced.text
    rows, shares = best_cells(traced, detectors, args.top)
    saturation = gate_saturation(traced)
    if args.json:
        out = {"model": name, "chars": len(text), "threshold": THRESHOLD, "interpretable": shares}
        print(json.dumps({**out, "cells": [r.to_json() for r in rows], "saturation": saturation}))
        return 0
    print(f"{name}: {len(text):,} characters; the best units of each detector (Pearson's r)")
    for row in rows:
        print(f"  {row.detector:<16} layer {row.layer} unit {row.unit:>4} {row.kind:<9} {row.correlation:+.3f}")
    summary = ", ".join(f"{kind} {share:.1%}" for kind, share in shares.items())
    print(f"interpretable (|r| >= {THRESHOLD} with some detector): {summary}")
    for layer, gates in saturation.items():
        parts = ", ".join(f"{g} {v['left']:.0%} below 0.1 / {v['right']:.0%} above 0.9" for g, v in gates.items())
        if parts:
            print(f"  layer {layer} gates: {parts}")
    return 0


def add_inspect(commands) -> None:
    p = commands.add_parser("inspect", help="one HTML file showing what the model's units do in a text")
    add_model_flags(p)
    p.add_argument("text", nargs="?", metavar="TEXT", help="a text file to read (default: the run's validation text)")
    p.add_argument("-o", "--out", default="report.html", help="the HTML file to write (default report.html)")
    p.add_argument("--detect", action="append", default=[], metavar="NAME=REGEX", help="as charrnn cells --detect")
    p.add_argument("--top", type=int, default=1, help="units listed per detector (default 1)")
    p.add_argument("--chars", type=int, default=5000, help="characters read (default 5,000)")
    p.add_argument(
        "--ngram-order",
        type=int,
        default=20,
        help="the n-gram (fitted on the run's training part) the model is set beside, by character class and "
        "by distance to the bracket or quote being closed; 0: none (default 20)",
    )
    p.set_defaults(run=cmd_inspect)


def cmd_inspect(args) -> int:
    start = time.perf_counter()
    _, vocab, name, traced, detectors = _traced(args)
    rows, _ = best_cells(traced, detectors, args.top)
    data = report_data(traced, vocab, rows, _samples(args), name)
    data["versus"] = _versus(args, traced, vocab)
    size = write_report(data, args.out)
    print(
        f"wrote {args.out}: {len(traced.text):,} characters, {size / 1e6:.1f} MB, in {time.perf_counter() - start:.1f} s"
    )
    return 0


def _samples(args, length: int = 200) -> list[dict]:
    """A sample from each kept checkpoint of the run, oldest first, with one seed: how it learned."""
    path = Path(args.path)
    if not path.is_dir() or args.also:
        return []
    out = []
    for info in RunDir(path).checkpoints():
        sampler = Sampler(*load_model(info.tensors_path))
        out.append({"step": info.step, "val_loss": info.val_loss, "text": sampler.generate("", length, seed=1)})
    return out


def _versus(args, traced, vocab) -> dict | None:
    """The model beside an n-gram fitted on the run's own training part (a run directory only)."""
    if not args.ngram_order or not Path(args.path).is_dir() or args.also:
        return None
    if not 1 <= args.ngram_order <= MAX_ORDER:
        raise CharRNNError(f"--ngram-order must be in [0, {MAX_ORDER}], got {args.ngram_order}")
    train = run_part(args.path, "train")
    ids = vocab.encode(traced.text)
    ngram_loss = -kneser_ney_log_probs(train, [ids], args.ngram_order, len(vocab))[0]
    return {"order": args.ngram_order, **versus(traced.text, -traced.log_probs, ngram_loss)}
