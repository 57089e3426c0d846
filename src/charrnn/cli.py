"""The `charrnn` command: parses flags, calls the API, prints. Mistakes become one line and exit 1."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import textwrap
from pathlib import Path

import torch

from . import __version__, allocator, prepare_cli
from . import checkpoint as ckpt
from .budget import SHAPING_FLAGS
from .config import TrainConfig
from .corpus import find_anna, iter_chunks, max_chars, read_text
from .dataset import validation_ids
from .devices import select_device
from .ensemble import Ensemble, load_ensemble
from .errors import CharRNNError, flag_name
from .evaluation import DYNAMIC_LR, evaluate, evaluate_dynamic
from .metrics import progress_bar
from .model import MODEL_FLAGS, CharRNN, ModelConfig, count_parameters
from .prepared import is_prepared
from .rundir import RUN_FILE, RunDir, load_model
from .runner import resume, train
from .runs import cell, find_runs, table_lines
from .sample import Sampler, SamplingOptions
from .serve.limits import ServeLimits
from .settings import add_flags, duration
from .vocab import Vocab


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"charrnn: error: {message} (see {self.prog} --help)\n")


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    """The flags of `train`: every declared setting of the model and of training (settings.py), whose
    defaults are suppressed so that a resume can tell which flags the user actually gave."""
    p.add_argument("texts", nargs="*", metavar="TEXT", help="text files to train on (UTF-8 unless --encoding)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its newest checkpoint")
    add_flags(p, ModelConfig, suppress=True)
    add_flags(p, TrainConfig, suppress=True)
    p.add_argument(
        "--val-text",
        dest="val_texts",
        action="append",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="validate on this file (text or a prepared corpus) instead of the training text's tail (repeat for more)",
    )


def _add_checkpoint_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="a run directory or one checkpoint file")
    p.add_argument(
        "--checkpoint", default="best", help="latest, best (lowest validation loss) or a step number (default best)"
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (default cpu)")


def _add_ensemble_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--with",
        dest="also",
        action="append",
        default=[],
        metavar="PATH",
        help="another run or checkpoint to average with the first: the mean of their next-character "
        "probabilities (repeat for more; models trained on the same text; --checkpoint applies to each)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="charrnn",
        description="Train character-level RNN language models and sample from them.",
        epilog="A mistake in the command line (an unknown flag, a value of the wrong type) exits 2; any other "
        "mistake exits 1; both print one line. `charrnn COMMAND --help` lists a command's flags.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"charrnn {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train_parser = commands.add_parser(
        "train",
        help="train a model on text files",
        description="Train a model on text files. With a time budget (5 minutes when no stop is given) and none of "
        f"{', '.join(map(flag_name, SHAPING_FLAGS))}, it first times a few settings' "
        "training steps here (at most 3% of the budget) and trains the one that budget suits best.",
    )
    _add_train_flags(train_parser)

    p = commands.add_parser("sample", help="generate text from a trained model")
    _add_checkpoint_flags(p)
    _add_ensemble_flag(p)
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
        "--checkpoints",
        choices=("all",),
        help="one sample from each kept checkpoint, oldest first, with the same prime and seed",
    )

    p = commands.add_parser("score", help="how likely a text is under a model, in all and character by character")
    _add_checkpoint_flags(p)
    _add_ensemble_flag(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="the text to score")
    what.add_argument("--file", help="a file holding the text to score (UTF-8)")
    p.add_argument(
        "--per-char", action="store_true", help="each character's log-probability and the likeliest alternatives"
    )
    p.add_argument("--top", type=int, default=3, help="alternatives shown per character with --per-char (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = commands.add_parser("eval", help="loss of a trained model on text files")
    _add_checkpoint_flags(p)
    _add_ensemble_flag(p)
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
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--encoding", default="utf-8", help="text encoding of the files")
    p.add_argument("--errors", default="strict", help="what to do with undecodable bytes: strict, replace, ignore")

    prepare_cli.add_flags(
        commands.add_parser("prepare", help="encode text files once into a corpus training memory-maps")
    )

    p = commands.add_parser("info", help="what a run, a checkpoint or a prepared corpus holds")
    p.add_argument("path", help="a run directory, one checkpoint file or a prepared corpus")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = commands.add_parser("export", help="write a trained model in another format (ONNX)")
    _add_checkpoint_flags(p)
    _add_ensemble_flag(p)
    p.add_argument("--onnx", required=True, metavar="FILE", help="the ONNX file to write (the onnx extra)")

    p = commands.add_parser("plot", help="training and validation curves of runs, on one figure (PNG or SVG)")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    p.add_argument("-o", "--out", default="curves.png", help="the figure to write, .png or .svg (default curves.png)")
    p.add_argument("--x", choices=("step", "time", "epoch"), default="step", help="the horizontal axis (default step)")
    p.add_argument("--bpc", action="store_true", help="bits per character instead of nats")

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
        "--test-fraction", type=float, default=0.0, help="set aside this tail of the text to score the choice on"
    )

    p = commands.add_parser("runs", help="a table of the runs under a directory, best validation first")
    p.add_argument("root", metavar="DIR", help="a directory holding run directories (at any depth)")
    p.add_argument("--json", action="store_true", help="print one JSON list")

    p = commands.add_parser("serve", help="serve a trained model over HTTP: a web page and an API")
    _add_checkpoint_flags(p)
    _add_ensemble_flag(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free one, printed)")
    add_flags(p, ServeLimits)
    p.add_argument("--api-key-file", help="a file of API keys, one a line: every route but / and /health needs one")
    p.add_argument("--cors-origin", action="append", default=[], help="an origin allowed to call the API (repeat)")
    p.add_argument("--grace", type=float, default=30.0, help="seconds running requests get to finish on SIGTERM")

    p = commands.add_parser("demo", help="train the default model on Anna Karenina and print a sample")
    p.add_argument("--out", default="runs/anna", help="run directory (default runs/anna)")
    p.add_argument("--time-budget", type=duration, default=None, help="training time (default 5m)")
    p.add_argument("--prime", default="Far", help="text the sample starts from")
    p.add_argument("--length", type=int, default=300, help="characters to sample")
    return parser


# --- commands -----------------------------------------------------------------------------------


def cmd_train(args) -> int:
    given = {k: v for k, v in vars(args).items() if k not in ("command", "debug", "resume")}
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
    shaped = (given.keys() | model_changes.keys()) & set(SHAPING_FLAGS)
    return train(config, keep_freed_memory=True, choose_for_budget=not shaped).exit_code


def _load(args) -> tuple[CharRNN | Ensemble, Vocab, str]:
    """The model (an ensemble with --with), its vocabulary, and a name for it in messages."""
    device = select_device(args.device)
    if not args.also:
        model, vocab, info = load_model(args.path, args.checkpoint, device)
        return model, vocab, info.name
    model, vocab, infos = load_ensemble([args.path, *args.also], args.checkpoint, device)
    return model, vocab, f"mean of {len(infos)} models: " + ", ".join(info.name for info in infos)


def cmd_sample(args) -> int:
    if args.checkpoints:
        return _sample_each_checkpoint(args)
    model, vocab, _ = _load(args)
    sampler = Sampler(model, vocab)
    options = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, greedy=args.greedy)
    if args.num_samples == 1:
        chars = sampler.stream(args.prime, args.length, seed=args.seed, stop=args.stop, **options)  # checks the prime
        out = sys.stdout
        out.write(args.prime)
        for char in chars:
            out.write(char)
            out.flush()
        out.write("\n")
        return 0
    samples = sampler.generate_many(args.prime, args.length, args.num_samples, args.seed, args.stop, **options)
    for index, text in enumerate(samples, 1):
        print(f"--- sample {index} ---\n{args.prime}{text}")
    return 0


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
        text = sampler.generate(args.prime, args.length, seed=seed, stop=args.stop, **options)
        val = "no validation" if info.val_loss is None else f"validation loss {info.val_loss:.4f}"
        print(f"--- step {info.step}, {val} ---\n{args.prime}{text}\n", flush=True)
    return 0


def cmd_score(args) -> int:
    model, vocab, name = _load(args)
    text = args.text if args.file is None else read_text(args.file)  # as training reads files
    if args.top < 0:
        raise CharRNNError(f"--top must not be negative, got {args.top}")
    scored = Sampler(model, vocab).score(text, args.top if args.per_char else 0)
    if args.json:
        print(json.dumps({"model": name, **scored.to_json(per_char=args.per_char)}))
        return 0
    print(
        f"{scored.loss:.4f} nats/char, {scored.bpc:.4f} bits/char; log-probability {scored.total:.2f} nats "
        f"over {scored.chars:,} characters after the first ({name})"
    )
    if args.per_char:
        for entry in scored.to_json(per_char=True)["per_char"]:
            alternatives = "  ".join(f"{c!r} {lp:.2f}" for c, lp in entry.get("top", {}).items())
            print(f"{entry['char']!r:>6} {entry['logprob']:8.3f}   {alternatives}")
    return 0


def cmd_eval(args) -> int:
    model, vocab, name = _load(args)
    if args.texts:
        ids = vocab.encode_chunks(iter_chunks(args.texts, args.encoding, args.errors), max_chars(args.texts))
    else:
        ids, name = validation_ids(args.path), f"{name}; {args.path}'s validation text"
    if len(ids) < 2:
        raise CharRNNError("text too short to evaluate: need at least two characters")
    # After reading the text, so that its temporary buffers still go back to the system.
    allocator.keep_freed_memory()
    bar = progress_bar("window")
    if args.dynamic_lr is None:
        result = evaluate(model, ids, progress=bar)
    else:
        result = evaluate_dynamic(model, ids, args.dynamic_lr, progress=bar)
    how = "" if args.dynamic_lr is None else f", dynamic evaluation at lr {args.dynamic_lr:g}"
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(f"{result.loss:.4f} nats/char, {result.bpc:.4f} bits/char over {result.chars:,} characters ({name}{how})")
    return 0


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
    vocab = run.get("vocab") or newest.meta["vocab"]
    config = ModelConfig.from_json(model_json).for_vocab(len(vocab))
    with torch.device("meta"):
        params = count_parameters(CharRNN(config))
    vals = [c.val_loss for c in checkpoints if c.val_loss is not None]
    return {
        "path": str(path),
        "config": TrainConfig.from_json(run["train"]).flat() if run else config.to_json(),
        "step": newest.step if newest else 0,
        "params": params,
        "vocab_size": config.vocab_size,
        "vocab": "".join(vocab),
        "best_val_loss": min(vals) if vals else None,
        "train_loss": newest.meta.get("train_loss") if newest else None,
        "elapsed_s": newest.meta.get("elapsed_s") if newest else None,
        "environment": run.get("environment"),
        "choice": run.get("choice"),  # what the time budget chose, when it chose (budget.py)
        "checkpoints": [{"path": str(c.tensors_path), "step": c.step, "val_loss": c.val_loss} for c in checkpoints],
    }


def cmd_info(args) -> int:
    if is_prepared(args.path):
        return prepare_cli.info(args.path, args.json)
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
    if info["best_val_loss"] is not None:
        print(f"best validation loss: {info['best_val_loss']:.4f} nats/char")
    for c in info["checkpoints"]:
        val = "" if c["val_loss"] is None else f"  val {c['val_loss']:.4f}"
        print(f"  step {c['step']:>7}{val}  {c['path']}")
    return 0


def cmd_export(args) -> int:
    from .export import EXPORTER, export_onnx

    if args.also:
        raise CharRNNError("export writes one model: export each member of an ensemble on its own")
    if args.device not in ("cpu", "auto"):
        raise CharRNNError("export runs on the CPU; drop --device")
    model, vocab, info = load_model(args.path, args.checkpoint, "cpu")
    out = export_onnx(model, vocab, args.onnx)
    print(
        f"wrote {out} from {info.name} with {EXPORTER}; inputs ids (batch, time) and the state, outputs logits and the state"
    )
    return 0


def cmd_plot(args) -> int:
    from .plot import plot_runs

    for note in plot_runs(args.runs, args.out, args.x, args.bpc):
        print(note)
    print(f"wrote {args.out}")
    return 0


def cmd_sweep(args) -> int:
    from .sweeps import SweepConfig, parse_set, sweep

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
        test_fraction=args.test_fraction,
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
    test = dict(result.test)
    left_out = test.pop("left_out", 0)
    for which, loss in test.items():
        print(f"test text ({args.test_fraction:g} of the text, seen by no choice), {which}: {loss:.4f} nats/char")
    if left_out:
        print(f"({left_out} test characters that no model's vocabulary holds were left out)")
    return 0


def terminal_width() -> int | None:
    """The terminal's columns, when stdout is one (a pipe or a file takes whole lines)."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def cmd_runs(args) -> int:
    rows = find_runs(args.root)
    if args.json:
        print(json.dumps([row.to_json() for row in rows], indent=1))
        return 0
    for line in table_lines(rows, terminal_width()):
        print(line)
    return 0


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


def cmd_serve(args) -> int:
    from .serve_cli import serve  # the serve extra is imported only here

    return serve(args)


COMMANDS = {
    "train": cmd_train,
    "sample": cmd_sample,
    "eval": cmd_eval,
    "info": cmd_info,
    "prepare": lambda args: prepare_cli.run(args),
    "score": cmd_score,
    "runs": cmd_runs,
    "sweep": cmd_sweep,
    "plot": cmd_plot,
    "export": cmd_export,
    "serve": cmd_serve,
    "demo": cmd_demo,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `charrnn`: what it can do
        parser.print_help()
        return 0
    # A file-size limit should make writes fail with EFBIG (reported, nothing lost), not kill us.
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        return COMMANDS[args.command](args)
    except CharRNNError as exc:
        if args.debug:
            raise
        print(f"charrnn: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("charrnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error. Point stdout at /dev/null so that
        # the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # the environment, not a bug: a full disk, a read-only directory, ...
        if args.debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"charrnn: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1


def entry_point() -> None:
    sys.exit(main())
