"""`charrnn sample`, `charrnn score` and `charrnn eval`: reading a trained model, or several averaged."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from ..data.corpus import iter_chunks, max_chars, read_text
from ..data.dataset import run_part
from ..data.splits import PARTS
from ..errors import CharRNNError
from ..generate.evaluation import DYNAMIC_LR, EvalResult, evaluate, evaluate_dynamic
from ..generate.picking import SamplingOptions
from ..generate.sampler import Sampler
from ..model.devices import select_device
from ..runs.metrics import progress_bar
from ..runs.rundir import RunDir, load_model
from ..settings import add_flags
from ..training import allocator
from ..training.config import TrainConfig
from .common import SymbolWriter, add_model_flags, load


def add_sample(commands) -> None:
    p = commands.add_parser("sample", help="generate text from a trained model")
    add_model_flags(p)
    p.add_argument("--prime", default="", help="text to start from (printed, then continued)")
    p.add_argument("--length", type=int, default=500, help="new characters to generate (default 500)")
    add_flags(p, SamplingOptions)
    p.add_argument("--seed", type=int, help="random seed; the same seed gives the same text")
    p.add_argument("--num-samples", type=int, default=1, help="samples to generate together (default 1)")
    p.add_argument(
        "--stop",
        action="append",
        default=[],
        metavar="STRING",
        help="end the sample where this appears (not printed; repeat)",
    )
    p.add_argument(
        "--clamp",
        action="append",
        default=[],
        type=clamp_flag,
        metavar="LAYER:UNIT=VALUE",
        help="hold a unit (layers from 1, units from 0; its h, and an LSTM's cell) at VALUE while sampling, to "
        "see what it does; charrnn cells finds units worth holding (repeat for more)",
    )
    p.add_argument(
        "--checkpoints",
        choices=("all",),
        help="one sample from each kept checkpoint, oldest first, with the same prime and seed",
    )
    p.set_defaults(run=cmd_sample)


def cmd_sample(args) -> int:
    if args.checkpoints:
        return _sample_each_checkpoint(args)
    model, vocab, _ = load(args)
    sampler = Sampler(model, vocab)
    sampler.clamp(dict(args.clamp))
    options = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, greedy=args.greedy)
    prime, stops = vocab.symbols(args.prime), [vocab.symbols(stop) for stop in args.stop]
    out = SymbolWriter(vocab)
    if args.num_samples == 1:
        chars = sampler.stream(prime, args.length, seed=args.seed, stop=stops, **options)  # checks the prime
        out.write(prime)
        for char in chars:
            out.write(char)
        out.write("\n")
        out.close()
        return 0
    samples = sampler.generate_many(prime, args.length, args.num_samples, args.seed, stops, **options)
    for index, text in enumerate(samples, 1):
        out.write(f"--- sample {index} ---\n{prime}{text}\n")
    out.close()
    return 0


def clamp_flag(text: str) -> tuple[tuple[int, int], float]:
    """`LAYER:UNIT=VALUE`, as --clamp takes it."""
    match = re.fullmatch(r"\s*(\d+):(\d+)=(-?\d+(?:\.\d*)?(?:e-?\d+)?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"invalid clamp {text!r}; use LAYER:UNIT=VALUE, e.g. 1:42=0.8")
    return (int(match.group(1)), int(match.group(2))), float(match.group(3))


def _sample_each_checkpoint(args) -> int:
    """The notebook's way of watching a model learn: the same prime and seed at every kept checkpoint."""
    if args.also or args.num_samples != 1:
        raise CharRNNError("--checkpoints all samples one model at a time: drop --with and --num-samples")
    path = Path(args.path)
    if not path.is_dir():
        raise CharRNNError(f"{path}: --checkpoints all needs a run directory")
    checkpoints = RunDir(path).checkpoints()
    if not checkpoints:
        raise CharRNNError(f"{path}: no checkpoints to sample from")
    seed = args.seed if args.seed is not None else 1
    options = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, greedy=args.greedy)
    device = select_device(args.device)
    for info in checkpoints:
        sampler = Sampler(*load_model(info.tensors_path, device=device))
        sampler.clamp(dict(args.clamp))
        vocab, out = sampler.vocab, SymbolWriter(sampler.vocab)
        prime, stops = vocab.symbols(args.prime), [vocab.symbols(stop) for stop in args.stop]
        text = sampler.generate(prime, args.length, seed=seed, stop=stops, **options)
        val = "no validation" if info.val_loss is None else f"validation loss {info.val_loss:.4f}"
        out.write(f"--- step {info.step}, {val} ---\n{prime}{text}\n\n")
        out.close()
    return 0


def add_score(commands) -> None:
    p = commands.add_parser("score", help="how likely a text is under a model, in all and character by character")
    add_model_flags(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="the text to score")
    what.add_argument("--file", help="a file holding the text to score (UTF-8)")
    p.add_argument(
        "--per-char", action="store_true", help="each character's log-probability and the likeliest alternatives"
    )
    p.add_argument("--top", type=int, default=3, help="alternatives shown per character with --per-char (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=cmd_score)


def cmd_score(args) -> int:
    model, vocab, name = load(args)
    # a file as training reads files
    text = vocab.symbols(args.text) if args.file is None else read_text(args.file, as_bytes=vocab.byte_level)
    if args.top < 0:
        raise CharRNNError(f"--top must not be negative, got {args.top}")
    scored = Sampler(model, vocab).score(text, args.top if args.per_char else 0, progress_bar("window"))
    if args.json:
        print(json.dumps({"model": name, "symbol": vocab.symbol, **scored.to_json(per_char=args.per_char)}))
        return 0
    unit = vocab.symbol
    print(
        f"{scored.loss:.4f} nats/{unit}, {scored.bpc:.4f} bits/{unit}; log-probability {scored.total:.2f} nats "
        f"over {scored.chars:,} {unit}s after the first ({name})"
    )
    if args.per_char:
        for entry in scored.to_json(per_char=True)["per_char"]:
            alternatives = "  ".join(f"{vocab.shown(c)} {lp:.2f}" for c, lp in entry.get("top", {}).items())
            print(f"{vocab.shown(entry['char']):>6} {entry['logprob']:8.3f}   {alternatives}")
    return 0


def add_eval(commands) -> None:
    p = commands.add_parser("eval", help="loss of a trained model on text files")
    add_model_flags(p)
    p.add_argument(
        "texts", nargs="*", metavar="TEXT", help="text files to score (default: the run's own validation text)"
    )
    p.add_argument(
        "--dynamic-lr",
        type=float,
        metavar="LR",
        help=f"dynamic evaluation: read the text as one stream, learning from it as it goes, at this SGD "
        f"learning rate (try {DYNAMIC_LR}; docs/experiments.md says how it was chosen); a different measure from plain eval",
    )
    p.add_argument(
        "--split",
        choices=(*PARTS, "all"),
        help="a part of the run's own text, split as in training (default valid; test only for runs trained with "
        "--split; all: every part it has); the figure is kept in the run, for runs and info",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--encoding", default="utf-8", help="text encoding of the files")
    p.add_argument("--errors", default="strict", help="what to do with undecodable bytes: strict, replace, ignore")
    p.set_defaults(run=cmd_eval)


def cmd_eval(args) -> int:
    model, vocab, name = load(args)
    if args.texts and args.split:
        raise CharRNNError("--split names a part of the run's own text: drop it, or the text files")
    if args.texts:
        chunks = iter_chunks(args.texts, args.encoding, args.errors, as_bytes=vocab.byte_level)
        result = _evaluated(model, vocab.encode_chunks(chunks, max_chars(args.texts)), args.dynamic_lr)
        _print_eval(args, result, vocab, name)
        return 0
    parts = [args.split or "valid"] if args.split != "all" else _parts_of(args.path)
    results = {}
    for part in parts:
        results[part] = _evaluated(model, run_part(args.path, part), args.dynamic_lr)
        if not args.also and args.dynamic_lr is None:  # the run's own figure, for runs and info
            RunDir.of(args.path).record_eval(part, {**results[part].to_json(), "checkpoint": name})
    if args.split is None:  # as before --split: the validation figure alone
        _print_eval(args, results["valid"], vocab, f"{name}; {args.path}'s validation text")
    elif args.json:
        print(json.dumps({part: result.to_json() for part, result in results.items()}))
    else:
        for part, result in results.items():
            _print_eval(args, result, vocab, f"{name}; {args.path}'s {part} part")
    return 0


def _parts_of(path) -> list[str]:
    """The parts a run's text has: a test part only with --split."""
    config = TrainConfig.from_json(RunDir.of(path).read("give the text to evaluate")["train"])
    return list(PARTS) if config.split else ["train", "valid"]


def _evaluated(model, ids, dynamic_lr: float | None) -> EvalResult:
    if len(ids) < 2:
        raise CharRNNError("text too short to evaluate: need at least two symbols")
    # After reading the text, so that its temporary buffers still go back to the system.
    allocator.keep_freed_memory()
    bar = progress_bar("window")
    if dynamic_lr is None:
        return evaluate(model, ids, progress=bar)
    return evaluate_dynamic(model, ids, dynamic_lr, progress=bar)


def _print_eval(args, result: EvalResult, vocab, name: str) -> None:
    if args.json:
        print(json.dumps({**result.to_json(), "symbol": vocab.symbol}))
        return
    how = "" if args.dynamic_lr is None else f", dynamic evaluation at lr {args.dynamic_lr:g}"
    unit = vocab.symbol
    print(f"{result.loss:.4f} nats/{unit}, {result.bpc:.4f} bits/{unit} over {result.chars:,} {unit}s ({name}{how})")
