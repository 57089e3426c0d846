"""The run directory on disk: run.json, checkpoints (safetensors + JSON), pointers, the lock.

    RUN/run.json                          program, format, configs, vocabulary, text fingerprint
    RUN/metrics.csv                       (written by metrics.py)
    RUN/checkpoints/step-000200-val1.4321.safetensors   tensors: model.*, optim.*, rng.*, state.*
    RUN/checkpoints/step-000200-val1.4321.json          step, losses, position, sha256 of the tensors
    RUN/latest, RUN/best                  the stem of the newest / lowest-validation checkpoint

Every file is written to a temporary name in its directory, fsynced, and renamed into place, and
the JSON (which holds the tensors' checksum) is renamed last: a checkpoint exists only once its
JSON does, so a process killed mid-save leaves the previous checkpoint as the newest one.
Loading parses JSON and safetensors only; nothing is unpickled.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .errors import CharRNNError
from .model import CharRNN, ModelConfig
from .vocab import Vocab

PROGRAM = "charrnn"
FORMAT_VERSION = 1
RUN_FILE = "run.json"
CHECKPOINT_DIR = "checkpoints"
# Test seam: kill this process (SIGKILL) just before its Nth rename, to prove saves are atomic.
FAULT_ENV = "CHARRNN_FAULT_KILL_BEFORE_RENAME"
_renames_done = 0


# --- atomic files ----------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part."""
    global _renames_done
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _renames_done += 1
        if os.environ.get(FAULT_ENV) == str(_renames_done):
            os.kill(os.getpid(), signal.SIGKILL)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=1) + "\n").encode())


def read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CharRNNError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CharRNNError(f"{path}: not a readable {what} ({exc})") from exc
    if not isinstance(data, dict):
        raise CharRNNError(f"{path}: not a {what}")
    return data


def check_header(meta: dict, path: Path) -> None:
    """Refuse files written by another program or by a newer charrnn."""
    if meta.get("program") != PROGRAM:
        raise CharRNNError(f"{path}: not a charrnn file (written by another program)")
    version = meta.get("format")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CharRNNError(f"{path}: format {version} is newer than this charrnn reads ({FORMAT_VERSION}); upgrade")


# --- checkpoints ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointInfo:
    meta_path: Path
    meta: dict

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    @property
    def val_loss(self) -> float | None:
        return self.meta.get("val_loss")

    @property
    def tensors_path(self) -> Path:
        return self.meta_path.with_suffix(".safetensors")

    @property
    def name(self) -> str:
        return self.meta_path.stem


def checkpoint_stem(step: int, val_loss: float | None) -> str:
    return f"step-{step:06d}" + (f"-val{val_loss:.4f}" if val_loss is not None else "")


def save_checkpoint(run_dir: Path, tensors: dict[str, torch.Tensor], meta: dict) -> CheckpointInfo:
    """Write one checkpoint: tensors first, then the JSON that vouches for them, then `latest`."""
    directory = run_dir / CHECKPOINT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    stem = checkpoint_stem(meta["step"], meta.get("val_loss"))
    blob = save_safetensors({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
    meta = {"program": PROGRAM, "format": FORMAT_VERSION, **meta, "sha256": hashlib.sha256(blob).hexdigest()}
    try:
        atomic_write(directory / f"{stem}.safetensors", blob)
        atomic_write_json(directory / f"{stem}.json", meta)
        atomic_write(run_dir / "latest", (stem + "\n").encode())
    except OSError as exc:
        reason = "disk full" if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) else exc.strerror
        raise CharRNNError(f"could not save checkpoint {stem} in {directory}: {reason}") from exc
    return CheckpointInfo(directory / f"{stem}.json", meta)


def list_checkpoints(run_dir: Path) -> list[CheckpointInfo]:
    """Every checkpoint whose JSON can be read, oldest first (tensors are not verified here)."""
    found = []
    for meta_path in sorted((run_dir / CHECKPOINT_DIR).glob("step-*.json")):
        try:
            meta = read_json(meta_path, "checkpoint")
            check_header(meta, meta_path)
            found.append(CheckpointInfo(meta_path, meta))
        except (CharRNNError, KeyError, ValueError):
            continue
    return sorted(found, key=lambda c: c.step)


def load_tensors(info: CheckpointInfo) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors, after checking them against the checksum in its JSON."""
    path = info.tensors_path
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise CharRNNError(f"{path}: cannot read checkpoint weights ({exc.strerror})") from exc
    if hashlib.sha256(blob).hexdigest() != info.meta.get("sha256"):
        raise CharRNNError(f"{path}: damaged (its checksum does not match {info.meta_path.name}; truncated?)")
    try:
        return load_safetensors(blob)
    except Exception as exc:  # safetensors raises its own error types for malformed files
        raise CharRNNError(f"{path}: not a valid safetensors file ({exc})") from exc


def open_checkpoint(path: Path) -> CheckpointInfo:
    """A checkpoint named by either of its files."""
    if path.suffix not in (".safetensors", ".json"):
        raise CharRNNError(f"{path}: not a charrnn checkpoint (expected step-*.safetensors with its .json beside it)")
    meta_path = path.with_suffix(".json")
    if not meta_path.exists():
        raise CharRNNError(f"{path}: not a charrnn checkpoint (no {meta_path.name} beside it)")
    meta = read_json(meta_path, "charrnn checkpoint")
    check_header(meta, meta_path)
    for key in ("step", "model", "vocab", "sha256"):
        if key not in meta:
            raise CharRNNError(f"{meta_path}: checkpoint metadata lacks {key!r}")
    return CheckpointInfo(meta_path, meta)


def _pick(checkpoints: list[CheckpointInfo], which: str, run_dir: Path) -> CheckpointInfo:
    if which == "latest":
        return checkpoints[-1]
    if which == "best":
        with_val = [c for c in checkpoints if c.val_loss is not None]
        return min(with_val, key=lambda c: (c.val_loss, -c.step)) if with_val else checkpoints[-1]
    if which.isdigit():
        for c in checkpoints:
            if c.step == int(which):
                return c
        steps = ", ".join(str(c.step) for c in checkpoints)
        raise CharRNNError(f"{run_dir}: no checkpoint at step {which} (have {steps})")
    raise CharRNNError(f"--checkpoint must be latest, best or a step number, got {which!r}")


def resolve_checkpoint(path: str | os.PathLike, which: str = "best") -> tuple[CheckpointInfo, dict]:
    """The checkpoint a user means by `path` (a run directory or one checkpoint file), verified and loaded."""
    path = Path(path)
    if not path.exists():
        raise CharRNNError(f"{path}: no such run directory or checkpoint")
    if path.is_file():
        info = open_checkpoint(path)
        return info, load_tensors(info)
    checkpoints = list_checkpoints(path)
    if not checkpoints:
        raise CharRNNError(f"{path}: no checkpoint found (is it a charrnn run directory?)")
    info = _pick(checkpoints, which, path)
    try:
        return info, load_tensors(info)
    except CharRNNError as exc:
        good = newest_good(checkpoints)
        hint = f"; the newest good one is {good.tensors_path} (--checkpoint {good.step})" if good else ""
        raise CharRNNError(f"{exc}{hint}") from exc


def newest_good(checkpoints: list[CheckpointInfo]) -> CheckpointInfo | None:
    for info in reversed(checkpoints):
        try:
            load_tensors(info)
            return info
        except CharRNNError:
            continue
    return None


def update_best_pointer(run_dir: Path) -> None:
    with_val = [c for c in list_checkpoints(run_dir) if c.val_loss is not None]
    if with_val:
        best = min(with_val, key=lambda c: (c.val_loss, -c.step))
        atomic_write(run_dir / "best", (best.name + "\n").encode())


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Keep the newest `keep` checkpoints and the best one; delete the rest (JSON first)."""
    checkpoints = list_checkpoints(run_dir)
    with_val = [c for c in checkpoints if c.val_loss is not None]
    best = min(with_val, key=lambda c: (c.val_loss, -c.step)) if with_val else None
    for info in checkpoints[: max(len(checkpoints) - keep, 0)]:
        if info != best:
            info.meta_path.unlink(missing_ok=True)
            info.tensors_path.unlink(missing_ok=True)


def clean_temporaries(run_dir: Path) -> None:
    """Remove temporary files a killed save left behind."""
    for directory in (run_dir, run_dir / CHECKPOINT_DIR):
        for tmp in directory.glob(".tmp-*"):
            tmp.unlink(missing_ok=True)


# --- the lock --------------------------------------------------------------------------------


class RunLock:
    """An exclusive flock on RUN/.lock: the kernel drops it when its holder dies, so it never sticks."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.read(self._fd, 32).decode(errors="replace").strip() or "?"
            os.close(self._fd)
            raise CharRNNError(f"{self.path.parent} is in use by another charrnn train (pid {holder})") from exc
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())
        return self

    def __exit__(self, *exc_info) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


# --- models from checkpoints -----------------------------------------------------------------------


def load_model(path: str | os.PathLike, which: str = "best", device: str | torch.device = "cpu"):
    """(CharRNN in eval mode, Vocab, CheckpointInfo) for a run directory or checkpoint file."""
    info, tensors = resolve_checkpoint(path, which)
    try:
        config = ModelConfig.from_json(info.meta["model"])
        vocab = Vocab.from_json(info.meta["vocab"])
        model = CharRNN(config)
        weights = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
        model.load_state_dict(weights)
    except (RuntimeError, TypeError, KeyError) as exc:
        raise CharRNNError(f"{info.tensors_path}: weights do not match the model described in its metadata") from exc
    if len(vocab) != config.vocab_size:
        raise CharRNNError(
            f"{info.meta_path}: vocabulary has {len(vocab)} characters, model expects {config.vocab_size}"
        )
    return model.to(device).eval(), vocab, info
