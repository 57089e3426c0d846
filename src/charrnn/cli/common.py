"""What the commands share: the flags naming a model to read, loading it (or an ensemble), the terminal."""

from __future__ import annotations

import argparse
import codecs
import shutil
import sys

from ..data.vocab import Vocab
from ..model.devices import select_device
from ..model.ensemble import Ensemble, load_models
from ..model.network import CharRNN


def add_model_flags(p: argparse.ArgumentParser) -> None:
    """The flags naming the model a command reads: a run or checkpoint, which checkpoint, the device, and
    more runs to average with it (`load` reads them)."""
    p.add_argument("path", help="a run directory or one checkpoint file")
    p.add_argument(
        "--checkpoint", default="best", help="latest, best (lowest validation loss) or a step number (default best)"
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (default cpu)")
    p.add_argument(
        "--with",
        dest="also",
        action="append",
        default=[],
        metavar="PATH",
        help="another run or checkpoint to average with the first: the mean of their next-character "
        "probabilities (repeat for more; models trained on the same text; --checkpoint applies to each)",
    )


def load(args) -> tuple[CharRNN | Ensemble, Vocab, str]:
    """The model (an ensemble with --with), its vocabulary, and a name for it in messages."""
    model, vocab, infos = load_models([args.path, *args.also], args.checkpoint, select_device(args.device))
    if len(infos) == 1:
        return model, vocab, infos[0].name
    return model, vocab, f"mean of {len(infos)} models: " + ", ".join(info.name for info in infos)


def terminal_width() -> int | None:
    """The terminal's columns, when stdout is one (a pipe or a file takes whole lines)."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


class SymbolWriter:
    """Writes a model's symbols to a stream as they come: a character model's as text; a byte model's as
    the bytes themselves, or, on a terminal, decoded as UTF-8 with invalid sequences replaced (U+FFFD),
    which `close` then says on stderr."""

    def __init__(self, vocab: Vocab, out=None):
        self.vocab, self.out = vocab, out or sys.stdout
        self.decoder = None
        if vocab.byte_level and (self.out.isatty() or not hasattr(self.out, "buffer")):
            self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.replaced = False

    def write(self, symbols: str) -> None:
        if not self.vocab.byte_level:
            self.out.write(symbols)
        elif self.decoder is not None:
            text = self.decoder.decode(symbols.encode("latin-1"))
            self.replaced |= "\ufffd" in text
            self.out.write(text)
        else:
            self.out.flush()
            self.out.buffer.write(symbols.encode("latin-1"))
        self.out.flush()

    def close(self) -> None:
        if self.decoder is not None:
            text = self.decoder.decode(b"", final=True)
            self.replaced |= "\ufffd" in text
            self.out.write(text)
        self.out.flush()
        if self.replaced:
            print("charrnn: the bytes were not all valid UTF-8; shown with U+FFFD in their place", file=sys.stderr)
