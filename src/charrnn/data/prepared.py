"""Prepared corpora: text files encoded once into a directory that training memory-maps.

    DIR/ids.bin        the ids, one raw little-endian array (uint8 up to 256 characters, uint16 up to
                       65,536, uint32 beyond)
    DIR/vocab.json     the characters, in code-point order
    DIR/manifest.json  format, character count, dtype, the vocabulary's and the ids' sha256, the source
                       files with their sizes, the encoding

`prepare` streams the files twice (the vocabulary, then the ids), a chunk at a time, with universal
newlines as training reads text, so its memory is bounded by the chunk, not the corpus. It builds the
directory beside its destination and renames it into place: an interrupted prepare leaves no
directory that `train` would take. This module does not import torch.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CharRNNError
from ..runs.files import atomic_write_json, read_json
from .corpus import iter_chunks
from .vocab import Vocab

FORMAT = 1
KIND = "charrnn prepared corpus"
MANIFEST, IDS, VOCAB = "manifest.json", "ids.bin", "vocab.json"
CHUNK_CHARS = 1 << 22


@dataclass(frozen=True)
class Prepared:
    path: Path
    manifest: dict
    vocab: Vocab

    @property
    def chars(self) -> int:
        return int(self.manifest["chars"])

    def ids(self) -> np.ndarray:
        """The ids as a read-only memory map (nothing is read until it is used)."""
        if self.chars == 0:
            return np.zeros(0, dtype=self.manifest["dtype"])
        return np.memmap(self.path / IDS, dtype=np.dtype(self.manifest["dtype"]).newbyteorder("<"), mode="r")


def is_prepared(path: str | os.PathLike) -> bool:
    return (Path(path) / MANIFEST).is_file()


def prepare(
    texts: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    encoding: str = "utf-8",
    errors: str = "strict",
    chunk_chars: int = CHUNK_CHARS,
    as_bytes: bool = False,
) -> Prepared:
    """Encodes `texts` into the prepared corpus `out` (which must not exist yet); `as_bytes`: a symbol per
    byte, as `train --bytes` reads files."""
    out = Path(out)
    if out.exists():
        raise CharRNNError(f"{out} already exists; prepare writes a new directory (remove it or choose another)")
    sources = [Path(t) for t in texts]
    vocab = Vocab.from_chunks(iter_chunks(sources, encoding, errors, chunk_chars, as_bytes), as_bytes)
    building = out.with_name(f".tmp-{os.getpid()}-{out.name}")
    try:
        building.mkdir(parents=True)
        chunks = iter_chunks(sources, encoding, errors, chunk_chars, as_bytes)
        chars, digest = _write_ids(chunks, vocab, building / IDS)
        atomic_write_json(building / VOCAB, {"chars": "".join(vocab.chars), "bytes": as_bytes})
        manifest = {
            "program": "charrnn",
            "kind": KIND,
            "format": FORMAT,
            "chars": chars,
            "dtype": vocab.dtype.name,
            "vocab_size": len(vocab),
            "vocab_sha256": hashlib.sha256("".join(vocab.chars).encode("utf-8", "surrogatepass")).hexdigest(),
            "ids_sha256": digest,
            "sources": [{"path": str(s.resolve()), "bytes": s.stat().st_size} for s in sources],
            "encoding": "bytes" if as_bytes else encoding,
            "errors": errors,
        }
        atomic_write_json(building / MANIFEST, manifest)  # last: a directory without it is no corpus
        os.rename(building, out)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return Prepared(out, manifest, vocab)


def _write_ids(chunks, vocab: Vocab, path: Path) -> tuple[int, str]:
    digest, chars, dtype = hashlib.sha256(), 0, vocab.dtype.newbyteorder("<")
    with open(path, "wb") as f:
        for chunk in chunks:
            ids = vocab.encode(chunk).astype(dtype, copy=False)
            f.write(memoryview(ids))
            digest.update(memoryview(ids))
            chars += len(ids)
        f.flush()
        os.fsync(f.fileno())
    return chars, digest.hexdigest()


def open_prepared(path: str | os.PathLike) -> Prepared:
    """A prepared corpus, checked against its manifest (sizes, not a re-hash: see `verify`)."""
    path = Path(path)
    if not path.is_dir():
        raise CharRNNError(f"{path}: no such prepared corpus directory")
    if not is_prepared(path) and not (path / IDS).exists():
        raise CharRNNError(f"{path}: is a directory, expected a text file or a prepared corpus (charrnn prepare)")
    if not is_prepared(path):
        raise CharRNNError(f"{path}: not a prepared corpus (no {MANIFEST}; an interrupted prepare leaves none)")
    manifest = read_json(path / MANIFEST, "prepared corpus manifest")
    if manifest.get("kind") != KIND or manifest.get("format") != FORMAT:
        raise CharRNNError(
            f"{path}: a prepared corpus of another format ({manifest.get('kind')!r} format "
            f"{manifest.get('format')!r}; this charrnn reads format {FORMAT}); prepare it again"
        )
    try:
        stored = read_json(path / VOCAB, "prepared corpus vocabulary")
        vocab = Vocab(tuple(stored["chars"]), byte_level=bool(stored.get("bytes", False)))
        itemsize = np.dtype(manifest["dtype"]).itemsize
        size = (path / IDS).stat().st_size
    except (KeyError, TypeError, OSError) as exc:
        raise CharRNNError(f"{path}: a damaged prepared corpus ({exc}); prepare it again") from exc
    if size != int(manifest["chars"]) * itemsize:
        raise CharRNNError(
            f"{path}: {IDS} holds {size} bytes, but the manifest says {manifest['chars']} characters of "
            f"{manifest['dtype']}; the corpus is damaged or truncated: prepare it again"
        )
    if len(vocab) != manifest.get("vocab_size") or vocab.dtype.name != manifest["dtype"]:
        raise CharRNNError(f"{path}: {VOCAB} does not match the manifest; prepare it again")
    return Prepared(path, manifest, vocab)


def verify(path: str | os.PathLike) -> Prepared:
    """`open_prepared`, then the ids re-hashed against the manifest's sha256."""
    prepared = open_prepared(path)
    digest = hashlib.sha256()
    with open(prepared.path / IDS, "rb") as f:
        while block := f.read(1 << 24):
            digest.update(block)
    if digest.hexdigest() != prepared.manifest["ids_sha256"]:
        raise CharRNNError(f"{prepared.path}: {IDS} does not match its recorded sha256; prepare it again")
    return prepared


def describe(prepared: Prepared) -> dict:
    """What `charrnn info DIR` shows of a prepared corpus."""
    m = prepared.manifest
    keys = ("chars", "vocab_size", "dtype", "ids_sha256", "vocab_sha256", "encoding", "sources")
    return {
        "path": str(prepared.path),
        "kind": KIND,
        **{k: m[k] for k in keys},
        "vocab": "".join(prepared.vocab.chars),
    }
