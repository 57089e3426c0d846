"""`charrnn`: the parser of every command, and the dispatch to the command modules."""

from __future__ import annotations

import argparse
import signal
import sys

from .. import __version__
from . import export, generate, inspect, ngram, prepare, runs, serve, sweep, train
from .report import reported


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"charrnn: error: {message} (see {self.prog} --help)\n")


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
    for add in (train.add_train, generate.add_sample, generate.add_score, generate.add_eval, prepare.add_prepare,
                runs.add_info, export.add_export, runs.add_plot, sweep.add_sweep, runs.add_runs, ngram.add_ngram,
                inspect.add_cells, inspect.add_inspect, serve.add_serve, train.add_demo):  # fmt: skip
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `charrnn`: what it can do
        parser.print_help()
        return 0
    # A file-size limit should make writes fail with EFBIG (reported, nothing lost), not kill us.
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return reported(lambda: args.run(args), args.debug)


def entry_point() -> None:
    sys.exit(main())
