"""One checkpoint on disk: its tensors (safetensors) and the JSON that vouches for them.

    step-000200-val1.4321.safetensors   the tensors `state.pack` names
    step-000200-val1.4321.json          program, format, step, losses, position, sha256 of the tensors

The tensors are written first and the JSON, which holds their checksum, last, each atomically
(`files.atomic_write`): a checkpoint exists only once its JSON does, so a process killed mid-save
leaves the previous checkpoint as the newest one. Loading parses JSON and safetensors only;
nothing is unpickled. Where checkpoints sit, and which is latest or best, is `rundir.RunDir`'s.
"""

from __future__ import annotations

import errno
import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from ..data.vocab import Vocab
from ..errors import CharRNNError
from ..model.network import CharRNN, ModelConfig
from . import state
from .files import atomic_write, atomic_write_json, read_json

PROGRAM = "charrnn"
# 2: the fp16 loss scaler's state is JSON in the metadata; run.json records the environment.
FORMAT_VERSION = 2


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


def save_checkpoint(directory: Path, tensors: dict[str, torch.Tensor], meta: dict) -> CheckpointInfo:
    """Write one checkpoint into `directory`: tensors first, then the JSON that vouches for them."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = checkpoint_stem(meta["step"], meta.get("val_loss"))
    blob = save_safetensors({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
    meta = {"program": PROGRAM, "format": FORMAT_VERSION, **meta, "sha256": hashlib.sha256(blob).hexdigest()}
    try:
        atomic_write(directory / f"{stem}.safetensors", blob)
        atomic_write_json(directory / f"{stem}.json", meta)
    except OSError as exc:
        reason = "disk full" if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) else exc.strerror
        raise CharRNNError(f"could not save checkpoint {stem} in {directory}: {reason}") from exc
    return CheckpointInfo(directory / f"{stem}.json", meta)


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


def build_model(info: CheckpointInfo, tensors: dict[str, torch.Tensor], device: str | torch.device = "cpu"):
    """(CharRNN in eval mode, Vocab) from a loaded checkpoint."""
    try:
        config = ModelConfig.from_json(info.meta["model"])
        vocab = Vocab.from_json(info.meta["vocab"])
        model = CharRNN(config)
        model.load_state_dict(state.inference_weights(tensors))
    except (RuntimeError, TypeError, KeyError) as exc:
        raise CharRNNError(f"{info.tensors_path}: weights do not match the model described in its metadata") from exc
    if len(vocab) != config.vocab_size:
        raise CharRNNError(
            f"{info.meta_path}: vocabulary has {len(vocab)} characters, model expects {config.vocab_size}"
        )
    return model.to(device).eval(), vocab
