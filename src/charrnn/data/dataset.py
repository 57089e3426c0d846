"""A run's text as the loop and validation use it: files -> vocabulary -> one-byte ids -> the training,
validation and (with --split) test parts.

`prepare_data` is what training reads; `run_part` reads a finished run's text again, checks it
against the run's fingerprint, and gives back one part: the validation part its loss was measured on,
or the test part nothing has read.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import CharRNNError
from ..runs.rundir import RunDir
from ..training.config import TrainConfig
from .corpus import iter_chunks, max_chars, train_val_split
from .prepared import open_prepared
from .splits import Split
from .vocab import Vocab


@dataclass(frozen=True)
class Data:
    vocab: Vocab
    train_ids: np.ndarray
    val_ids: np.ndarray
    fingerprint: str  # sha256 of the encoded text: a resume must see the same text
    test_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))  # --split's; training never reads it

    def part(self, name: str) -> np.ndarray:
        """The ids of one part: "train", "valid" or "test"."""
        return {"train": self.train_ids, "valid": self.val_ids, "test": self.test_ids}[name]


def prepare_data(config: TrainConfig, vocab: Vocab | None = None) -> Data:
    """The run's text: a prepared corpus (one directory, memory-mapped) or text files, encoded now."""
    if len(config.texts) == 1 and os.path.isdir(config.texts[0]):
        prepared = open_prepared(config.texts[0])
        if prepared.vocab.byte_level != config.bytes:
            read = "bytes" if prepared.vocab.byte_level else "characters"
            raise CharRNNError(
                f"{prepared.path} was prepared as {read}: {'add' if prepared.vocab.byte_level else 'drop'} --bytes"
            )
        if vocab is not None and vocab != prepared.vocab:
            raise CharRNNError(
                f"{prepared.path}: its vocabulary is not the run's; resume needs the corpus it started on"
            )
        vocab, ids, fingerprint = prepared.vocab, prepared.ids(), prepared.manifest["ids_sha256"]
    else:
        vocab, ids = _encoded_files(config, vocab)
        fingerprint = hashlib.sha256(memoryview(ids)).hexdigest()
    if config.val_texts:
        train_ids, val_ids = ids, _validation_text(config, vocab)
        fingerprint = hashlib.sha256(
            f"{fingerprint} {hashlib.sha256(memoryview(val_ids)).hexdigest()}".encode()
        ).hexdigest()
    elif config.split is not None:
        train_ids, val_ids, test_ids = Split.parse(config.split).parts(ids)
        _check_lengths(config, train_ids, val_ids)
        return Data(vocab, train_ids, val_ids, fingerprint, test_ids)
    else:
        train_ids, val_ids = validation_split(ids, config.val_fraction, config.val_max_chars)
    _check_lengths(config, train_ids, val_ids)
    return Data(vocab, train_ids, val_ids, fingerprint)


def _check_lengths(config: TrainConfig, train_ids: np.ndarray, val_ids: np.ndarray) -> None:
    need = config.batch_size * config.seq_len + 1
    if len(train_ids) < need:
        parts = f"--split {config.split}" if config.split else f"--val-fraction {config.val_fraction}"
        total = "" if config.split else f" ({math.ceil(need / (1 - config.val_fraction))} in all with {parts})"
        raise CharRNNError(
            f"text too short: {len(train_ids)} training symbols, but --batch-size {config.batch_size} "
            f"--seq-len {config.seq_len} need {need}{total}; use a longer text or smaller --batch-size/--seq-len"
        )
    if config.split is None and config.val_fraction > 0 and len(val_ids) < 2:
        raise CharRNNError("text too short for its validation split; raise --val-fraction or use --val-fraction 0")
    if config.split is not None and len(val_ids) == 1:
        raise CharRNNError(f"--split {config.split} leaves one validation symbol; give it none or more")


def _validation_text(config: TrainConfig, vocab: Vocab) -> np.ndarray:
    """`--val-text`: its last `val_max_chars` characters, in the training text's vocabulary."""
    texts = config.val_texts
    try:
        if len(texts) == 1 and os.path.isdir(texts[0]):
            source = open_prepared(texts[0])
            ids = vocab.encode(source.vocab.decode(source.ids()[-config.val_max_chars :]))
        else:
            chunks = iter_chunks(texts, config.encoding, config.errors, as_bytes=config.bytes)
            ids = vocab.encode_chunks(chunks, max_chars(texts))
    except CharRNNError as exc:
        raise CharRNNError(f"--val-text: {exc} (the model's vocabulary is the training text's)") from exc
    return ids[-config.val_max_chars :]


def _encoded_files(config: TrainConfig, vocab: Vocab | None) -> tuple[Vocab, np.ndarray]:
    def chunks():
        return iter_chunks(config.texts, config.encoding, config.errors, as_bytes=config.bytes)

    # Two passes over the files (vocabulary, then ids) keep memory at about one byte per character.
    vocab = vocab or Vocab.from_chunks(chunks(), as_bytes=config.bytes)
    return vocab, vocab.encode_chunks(chunks(), max_chars(config.texts))


def validation_split(ids: np.ndarray, val_fraction: float, val_max_chars: int) -> tuple[np.ndarray, np.ndarray]:
    """The contiguous tail for validation, at most `val_max_chars` long (the rest trains), so that a
    huge corpus's every validation does not read a tenth of it."""
    train_ids, val_ids = train_val_split(ids, val_fraction)
    if len(val_ids) > val_max_chars:
        cut = len(ids) - val_max_chars
        train_ids, val_ids = ids[:cut], ids[cut:]
    return train_ids, val_ids


def run_part(path: str | os.PathLike, part: str = "valid") -> np.ndarray:
    """One part ("train", "valid" or "test") of the text of the run that holds `path` (its directory or
    one of its checkpoint files), read again from its training files and split as in training."""
    run_dir = RunDir.of(path)
    run = run_dir.read("give the text to evaluate")
    config = TrainConfig.from_json(run["train"])
    for text in config.texts:
        if not os.path.isfile(text) and not os.path.isdir(text):
            raise CharRNNError(f"{text}: {run_dir}'s training text is gone; give the text to evaluate")
    changed = f"the training text changed since {run_dir} was trained"
    try:
        data = prepare_data(config, Vocab.from_json(run["vocab"]))
    except CharRNNError as exc:  # new characters, or too short now
        raise CharRNNError(f"{changed} ({exc}); give the text to evaluate") from exc
    if data.fingerprint != run["text_sha256"]:
        raise CharRNNError(f"{changed}; give the text to evaluate")
    ids = data.part(part)
    if part == "test" and config.split is None:
        raise CharRNNError(f"{run_dir} has no test part: it was trained without --split")
    if len(ids) < 2:
        how = "--val-fraction 0" if config.split is None else f"--split {config.split}"
        raise CharRNNError(f"{run_dir} was trained with no {part} text ({how}); give the text to evaluate")
    return ids
