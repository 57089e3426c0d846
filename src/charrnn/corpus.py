"""Reading training text: files to one string, the train/validation split, the demo corpus.

Knows nothing of models or torch. Every way a file can be unusable ends in a `CharRNNError`
that names the file and says what to do.
"""

from __future__ import annotations

import os
import re
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from .errors import CharRNNError

ANNA_ENV = "CHARRNN_ANNA"
GUTENBERG_URL_ENV = "CHARRNN_GUTENBERG_URL"
GUTENBERG_ANNA_URL = "https://www.gutenberg.org/cache/epub/1399/pg1399.txt"
_BINARY_SNIFF_BYTES = 8192

T = TypeVar("T", bound=Sequence)


def read_text(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict") -> str:
    """Read one file as text with universal newlines ("\\r\\n" and "\\r" become "\\n")."""
    path = Path(path)
    if not path.exists():
        raise CharRNNError(f"{path}: no such file")
    if path.is_dir():
        raise CharRNNError(f"{path}: is a directory, expected a text file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CharRNNError(f"{path}: cannot read ({exc.strerror})") from exc
    if not raw:
        raise CharRNNError(f"{path}: file is empty")
    if b"\x00" in raw[:_BINARY_SNIFF_BYTES] and not encoding.lower().startswith("utf-16"):
        raise CharRNNError(f"{path}: looks like a binary file (it holds NUL bytes), not text")
    try:
        text = raw.decode(encoding, errors)
    except LookupError as exc:
        raise CharRNNError(f"unknown encoding {encoding!r} or errors mode {errors!r}") from exc
    except UnicodeDecodeError as exc:
        raise CharRNNError(_decode_error_message(path, raw, exc, encoding)) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode_error_message(path: Path, raw: bytes, exc: UnicodeDecodeError, encoding: str) -> str:
    line = raw.count(b"\n", 0, exc.start) + 1
    column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
    return (
        f"{path}: not valid {encoding} at byte {exc.start} (line {line}, column {column}); "
        "pass --encoding (e.g. latin-1) or --errors replace"
    )


def read_texts(paths: Sequence[str | os.PathLike], encoding="utf-8", errors="strict") -> str:
    """Read several files into one text, each starting on a new line."""
    if not paths:
        raise CharRNNError("no text files given")
    parts = [read_text(p, encoding, errors) for p in paths]
    return "".join(p if p.endswith("\n") or i == len(parts) - 1 else p + "\n" for i, p in enumerate(parts))


def train_val_split(seq: T, val_fraction: float) -> tuple[T, T]:
    """Split off the last `val_fraction` of `seq` (contiguous, so validation text is unseen text)."""
    if not 0.0 <= val_fraction < 1.0:
        raise CharRNNError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    n_val = round(len(seq) * val_fraction)
    n_train = len(seq) - n_val
    return seq[:n_train], seq[n_train:]


# --- the demo corpus -------------------------------------------------------------------------


def _candidate_anna_paths() -> list[Path]:
    here = Path(__file__).resolve()
    candidates = [Path.cwd() / "../shared/data/anna.txt"]
    # A checkout installed in place: <root>/src/charrnn/corpus.py, corpora in <root>/../shared/data.
    candidates += [parent / "../shared/data/anna.txt" for parent in here.parents[1:4]]
    candidates.append(_cache_dir() / "anna.txt")
    return candidates


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "charrnn"


def find_anna(download: bool = True) -> Path:
    """Find *Anna Karenina*: $CHARRNN_ANNA, ../shared/data/, the cache, else download it."""
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
    return download_gutenberg(os.environ.get(GUTENBERG_URL_ENV, GUTENBERG_ANNA_URL), _cache_dir() / "anna.txt")


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
