"""`RunDir`: a run on disk, and the one place that knows its layout.

    RUN/run.json                          program, format, configs, vocabulary, text fingerprint, environment
    RUN/metrics.csv                       one row per step (metrics.py writes it)
    RUN/checkpoints/step-*.safetensors    and their .json (checkpoint.py)
    RUN/latest, RUN/best                  the stem of the newest / lowest-validation checkpoint
    RUN/.lock                             flock held by the one process training the run

A user names a run by its directory or by one of its checkpoint files; `RunDir.of` turns either
into the run. Every file is written atomically (`files.py`); the lock is the kernel's, so it
never outlives its holder.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import torch

from ..errors import CharRNNError
from . import checkpoint as ckpt
from .checkpoint import CheckpointInfo
from .files import atomic_write, atomic_write_json, read_json

RUN_FILE = "run.json"
CHECKPOINT_DIR = "checkpoints"


class RunDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def of(cls, path: str | os.PathLike) -> RunDir:
        """The run that holds `path`: the directory itself, or the run of a file in its checkpoints/."""
        path = Path(path)
        if path.is_dir():
            return cls(path)
        return cls(path.resolve().parent.parent)

    def __str__(self) -> str:
        return str(self.path)

    # -- run.json ---------------------------------------------------------------------------------

    @property
    def run_file(self) -> Path:
        return self.path / RUN_FILE

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.csv"

    def has_run_file(self) -> bool:
        return self.run_file.is_file()

    def read(self, hint: str) -> dict:
        """run.json, checked; `hint` says what to do when there is none."""
        if not self.has_run_file():
            raise CharRNNError(f"{self.path}: not a charrnn run directory (no {RUN_FILE}); {hint}")
        run = read_json(self.run_file, "charrnn run file")
        ckpt.check_header(run, self.run_file)
        return run

    def write(self, run: dict) -> None:
        atomic_write_json(self.run_file, {"program": ckpt.PROGRAM, "format": ckpt.FORMAT_VERSION, **run})

    # -- evals.json: what `charrnn eval` measured on the run's own parts -------------------------------

    @property
    def evals_file(self) -> Path:
        return self.path / "evals.json"

    def evals(self) -> dict:
        """{part: {"loss", "bpc", "symbols", "checkpoint", ...}} for each part evaluated so far."""
        return read_json(self.evals_file, "charrnn evaluations") if self.evals_file.is_file() else {}

    def record_eval(self, part: str, result: dict) -> None:
        atomic_write_json(self.evals_file, {**self.evals(), part: result})

    # -- checkpoints ------------------------------------------------------------------------------

    def checkpoints(self) -> list[CheckpointInfo]:
        """Every checkpoint whose JSON can be read, oldest first (tensors are not verified here)."""
        found = []
        for meta_path in sorted((self.path / CHECKPOINT_DIR).glob("step-*.json")):
            try:
                meta = read_json(meta_path, "checkpoint")
                ckpt.check_header(meta, meta_path)
                found.append(CheckpointInfo(meta_path, meta))
            except (CharRNNError, KeyError, ValueError):
                continue
        return sorted(found, key=lambda c: c.step)

    def best(self, checkpoints: list[CheckpointInfo] | None = None) -> CheckpointInfo | None:
        """The lowest validation loss (the newer of equals); None when none was validated."""
        with_val = [c for c in (checkpoints or self.checkpoints()) if c.val_loss is not None]
        return min(with_val, key=lambda c: (c.val_loss, -c.step)) if with_val else None

    def pick(self, which: str) -> CheckpointInfo:
        """`latest`, `best` (the latest if none was validated) or a step number."""
        checkpoints = self.checkpoints()
        if not checkpoints and RunLock.holder(self.path) is not None:
            raise CharRNNError(f"{self.path} is training and has no checkpoint yet; the first comes within a minute")
        if not checkpoints:
            raise CharRNNError(f"{self.path}: no checkpoint found (is it a charrnn run directory?)")
        if which == "latest":
            return checkpoints[-1]
        if which == "best":
            return self.best(checkpoints) or checkpoints[-1]
        if which.isdigit():
            for c in checkpoints:
                if c.step == int(which):
                    return c
            steps = ", ".join(str(c.step) for c in checkpoints)
            raise CharRNNError(f"{self.path}: no checkpoint at step {which} (have {steps})")
        raise CharRNNError(f"--checkpoint must be latest, best or a step number, got {which!r}")

    def newest_good(self) -> CheckpointInfo | None:
        """The newest checkpoint whose tensors pass their checksum."""
        for info in reversed(self.checkpoints()):
            try:
                ckpt.load_tensors(info)
                return info
            except CharRNNError:
                continue
        return None

    def save(self, tensors: dict[str, torch.Tensor], meta: dict, keep: int) -> CheckpointInfo:
        """A new checkpoint, then the `latest` and `best` pointers, then pruning to `keep` and the best."""
        info = ckpt.save_checkpoint(self.path / CHECKPOINT_DIR, tensors, meta)
        try:
            atomic_write(self.path / "latest", (info.name + "\n").encode())
            best = self.best()
            if best is not None:
                atomic_write(self.path / "best", (best.name + "\n").encode())
        except OSError as exc:
            raise CharRNNError(f"could not update {self.path}'s latest/best pointers: {exc.strerror}") from exc
        self.prune(keep)
        return info

    def prune(self, keep: int) -> None:
        """Keep the newest `keep` checkpoints (0: all) and the best one; delete the rest (JSON first)."""
        if keep == 0:
            return
        checkpoints = self.checkpoints()
        best = self.best(checkpoints)
        for info in checkpoints[: max(len(checkpoints) - keep, 0)]:
            if info != best:
                info.meta_path.unlink(missing_ok=True)
                info.tensors_path.unlink(missing_ok=True)

    def clean_temporaries(self) -> None:
        """Remove temporary files a killed save left behind."""
        for directory in (self.path, self.path / CHECKPOINT_DIR):
            for tmp in directory.glob(".tmp-*"):
                tmp.unlink(missing_ok=True)

    def lock(self) -> RunLock:
        return RunLock(self.path)


def resolve_checkpoint(path: str | os.PathLike, which: str = "best") -> tuple[CheckpointInfo, dict]:
    """The checkpoint a user means by `path` (a run directory or one checkpoint file), verified and loaded."""
    path = Path(path)
    if not path.exists():
        raise CharRNNError(f"{path}: no such run directory or checkpoint")
    if path.is_file():
        info = ckpt.open_checkpoint(path)
        return info, ckpt.load_tensors(info)
    run = RunDir(path)
    info = run.pick(which)
    try:
        return info, ckpt.load_tensors(info)
    except CharRNNError as exc:
        good = run.newest_good()
        hint = f"; the newest good one is {good.tensors_path} (--checkpoint {good.step})" if good else ""
        raise CharRNNError(f"{exc}{hint}") from exc


def load_model(path: str | os.PathLike, which: str = "best", device: str | torch.device = "cpu"):
    """(CharRNN in eval mode, Vocab, CheckpointInfo) for a run directory or checkpoint file."""
    info, tensors = resolve_checkpoint(path, which)
    model, vocab = ckpt.build_model(info, tensors, device)
    return model, vocab, info


class RunLock:
    """An exclusive flock on RUN/.lock: the kernel drops it when its holder dies, so it never sticks."""

    @staticmethod
    def holder(run_dir: Path) -> int | None:
        """The pid training in `run_dir` now, read without taking the lock (so a reader never disturbs a
        run): the pid the lock file names, if that process is alive."""
        try:
            pid = int((Path(run_dir) / ".lock").read_text().strip() or 0)
            if pid:
                os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid or None

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
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
            os.ftruncate(self._fd, 0)  # an empty lock file: nobody trains here (`holder` reads it)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
