"""Reading training text: files to one string, the train/validation split, the demo corpus.

Knows nothing of models or torch. Every way a file can be unusable ends in a `CharRNNError`
that names the file and says what to do.
"""

from __future__ import annotations

import codecs
import os
import re
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from ..errors import CharRNNError

ANNA_ENV = "CHARRNN_ANNA"
GUTENBERG_ANNA_URL = "https://www.gutenberg.org/cache/epub/1399/pg1399.txt"
_BINARY_SNIFF_BYTES = 8192

T = TypeVar("T", bound=Sequence)


CHUNK_CHARS = 1 << 22  # texts are read and encoded in pieces this long, so memory stays near the ids


def _check_file(path: Path, encoding: str, as_bytes: bool = False) -> None:
    if not path.exists():
        raise CharRNNError(f"{path}: no such file")
    if path.is_dir():
        raise CharRNNError(f"{path}: is a directory, expected a text file")
    try:
        with open(path, "rb") as f:
            head = f.read(_BINARY_SNIFF_BYTES)
    except OSError as exc:
        raise CharRNNError(f"{path}: cannot read ({exc.strerror})") from exc
    if not head:
        raise CharRNNError(f"{path}: file is empty")
    if b"\x00" in head and not as_bytes and not encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32")):
        raise CharRNNError(f"{path}: looks like a binary file (it holds NUL bytes), not text")


def _decode_error_message(path: Path, encoding: str) -> str:
    """Where the first undecodable byte is (only on the error path, so reading it all is fine)."""
    raw = path.read_bytes()
    try:
        raw.decode(encoding)
        return f"{path}: not valid {encoding}; pass --encoding (e.g. latin-1) or --errors replace"
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return (
            f"{path}: not valid {encoding} at byte {exc.start} (line {line}, column {column}); "
            "pass --encoding (e.g. latin-1) or --errors replace"
        )


def iter_chunks(
    paths: Sequence[str | os.PathLike],
    encoding: str = "utf-8",
    errors: str = "strict",
    chunk_chars: int = CHUNK_CHARS,
    as_bytes: bool = False,
) -> Iterator[str]:
    """The text of `paths` in order, piece by piece, with universal newlines ("\r\n" and "\r" become
    "\n") and each file starting on a new line. `as_bytes`: each byte as one symbol (latin-1, which maps
    every byte to the code point of its value), nothing translated; `encoding` and `errors` unused."""
    if as_bytes:
        encoding, errors = "latin-1", "strict"
    if not paths:
        raise CharRNNError("no text files given")
    try:
        codecs.lookup(encoding)
        codecs.lookup_error(errors)
    except LookupError as exc:
        raise CharRNNError(f"unknown encoding {encoding!r} or errors mode {errors!r}") from exc
    for path in map(Path, paths):
        _check_file(path, encoding, as_bytes)
    last = "\n"
    for path in map(Path, paths):
        if last != "\n":
            yield "\n"
        try:
            with open(path, encoding=encoding, errors=errors, newline="" if as_bytes else None) as f:
                while chunk := f.read(chunk_chars):
                    last = chunk[-1]
                    yield chunk
        except UnicodeDecodeError as exc:
            raise CharRNNError(_decode_error_message(path, encoding)) from exc
        except OSError as exc:
            raise CharRNNError(f"{path}: cannot read ({exc.strerror})") from exc


def max_chars(paths: Sequence[str | os.PathLike]) -> int:
    """An upper bound on the characters `iter_chunks(paths)` yields (no encoding has under a byte a char).

    Paths that are not files count nothing: `iter_chunks` reports them with a clear message."""
    return sum(Path(p).stat().st_size for p in paths if Path(p).is_file()) + len(paths)


def read_text(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict", as_bytes: bool = False) -> str:
    """Read one file as text with universal newlines (or, `as_bytes`, as its bytes' symbols)."""
    return "".join(iter_chunks([path], encoding, errors, as_bytes=as_bytes))


def train_val_split(seq: T, val_fraction: float) -> tuple[T, T]:
    """Split off the last `val_fraction` of `seq` (contiguous, so validation text is unseen text)."""
    if not 0.0 <= val_fraction < 1.0:
        raise CharRNNError(f"val_fraction (--val-fraction) must be in [0, 1), got {val_fraction}")
    n_val = round(len(seq) * val_fraction)
    n_train = len(seq) - n_val
    return seq[:n_train], seq[n_train:]


# --- the demo corpus -------------------------------------------------------------------------


def _candidate_anna_paths() -> list[Path]:
    here = Path(__file__).resolve()
    candidates = [Path.cwd() / "../shared/data/anna.txt"]
    # A checkout installed in place: <root>/src/charrnn/data/corpus.py, corpora in <root>/../shared/data.
    candidates += [parent / "../shared/data/anna.txt" for parent in here.parents[2:5]]
    candidates.append(_cache_dir() / "anna.txt")
    return candidates


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "charrnn"


def find_anna(download: bool = True, url: str = GUTENBERG_ANNA_URL) -> Path:
    """Find *Anna Karenina*: $CHARRNN_ANNA, ../shared/data/, the cache, else download it from `url`."""
    if os.environ.get(ANNA_ENV):
        path = Path(os.environ[ANNA_ENV])
        if not path.is_file():
            raise CharRNNError(f"${ANNA_ENV} points to {path}, which is not a file")
        return path
    for path in _candidate_anna_paths():
        if path.is_file():
            return path.resolve()
    if not download:
        raise CharRNNError(f"anna.txt not found; set ${ANNA_ENV} to its path")
    return download_gutenberg(url, _cache_dir() / "anna.txt")


def download_gutenberg(url: str, dest: Path, timeout_s: float = 60.0) -> Path:
    """Download a Project Gutenberg text, strip its licence header and footer, save it at `dest`."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            raw = response.read()
    except OSError as exc:
        raise CharRNNError(f"could not download {url} ({exc}); set ${ANNA_ENV} to a local copy") from exc
    text = strip_gutenberg_boilerplate(raw.decode("utf-8-sig", errors="replace"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(dest)
    return dest


_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.MULTILINE | re.IGNORECASE)
_END = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.MULTILINE | re.IGNORECASE)


def strip_gutenberg_boilerplate(text: str) -> str:
    """Keep only the book between Gutenberg's START and END markers (all of it if they are absent)."""
    start = _START.search(text)
    end = _END.search(text, start.end() if start else 0)
    body = text[start.end() if start else 0 : end.start() if end else len(text)]
    return body.strip("\r\n") + "\n"
