"""`charrnn export RUN --web DIR`: a folder any static host serves, with which a page generates in the
browser with no server: the page and the JavaScript module (this package's .js/.html/.css files, copied
as they are), the weights in one binary file, and manifest.json describing them (format version, the
architecture, the vocabulary as code points, the quantisation, checksums and golden vectors: the
model's log-probabilities for a fixed text, which the module reproduces before it accepts the model).

Quantisation only shrinks the download: fp16 halves the matrices, int8 (symmetric, one float32 scale
per row) quarters them; the browser widens them back to float32. Biases stay float32.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import typing
import zlib
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from ..data.vocab import Vocab
from ..errors import CharRNNError
from ..generate.picking import SamplingOptions
from ..generate.sampler import Sampler
from ..model.network import CharRNN, count_parameters
from ..settings import specs
from .assets import ASSETS, asset_text
from .inline import write_single_file

FORMAT, VERSION = "charrnn-web", 1
QUANTIZATIONS = ("fp32", "fp16", "int8")
WEIGHTS_FILE = "weights.bin"
GOLDEN_LENGTH = 64  # symbols in the golden text
GOLDEN_TOLERANCE = 1e-3  # nats: float32 engines agree to ~1e-6; a wrong weight is off by far more


def _quantized(tensor: torch.Tensor, mode: str) -> tuple[bytes, bytes | None, torch.Tensor, str]:
    """(data, per-row scales or None, the tensor as the browser will see it, dtype name)."""
    values = tensor.detach().float().cpu().numpy()
    if mode == "fp32" or values.ndim == 1:
        return values.astype("<f4").tobytes(), None, torch.from_numpy(values.copy()), "f32"
    if mode == "fp16":
        half = values.astype("<f2")
        return half.tobytes(), None, torch.from_numpy(half.astype(np.float32)), "f16"
    scales = np.abs(values).max(axis=1) / 127
    scales = np.where(scales > 0, scales, 1).astype("<f4")
    q = np.clip(np.rint(values / scales[:, None]), -127, 127).astype(np.int8)
    return q.tobytes(), scales.tobytes(), torch.from_numpy(q.astype(np.float32) * scales[:, None]), "i8"


def quantize(model: CharRNN, mode: str) -> tuple[bytes, list[dict], CharRNN]:
    """The weights file's bytes, its tensor table, and a copy of the model on the dequantised weights."""
    if mode not in QUANTIZATIONS:
        raise CharRNNError(f"unknown quantisation {mode!r}; choose one of {', '.join(QUANTIZATIONS)}")
    blob, table, seen = bytearray(), [], {}
    for name, tensor in model.state_dict().items():
        data, scales, seen[name], dtype = _quantized(tensor, mode)
        entry = {"name": name, "shape": list(tensor.shape), "dtype": dtype, "offset": len(blob)}
        blob += data + bytes(-len(data) % 4)  # each tensor 4-byte aligned
        if scales is not None:
            entry["scales_offset"] = len(blob)
            blob += scales
        table.append(entry)
    seen_model = copy.deepcopy(model).cpu().eval()
    seen_model.load_state_dict(seen)
    return bytes(blob), table, seen_model


@torch.inference_mode()
def golden(model: CharRNN, vocab: Vocab) -> dict:
    """A fixed text (the lead-in and the model's own seeded sample) and each symbol's log-probability
    after the ones before it, from the zero state: what the browser must reproduce."""
    start = vocab.lead_in or vocab.chars[0]
    text = start + Sampler(model, vocab).generate("", GOLDEN_LENGTH - 1, seed=0)
    ids = torch.as_tensor(vocab.encode(text).astype("int64"))[None]
    logits, _ = model(ids[:, :-1])
    log_probs = torch.log_softmax(logits.double(), -1)[0].gather(1, ids[0, 1:, None])[:, 0]
    return {"ids": ids[0].tolist(), "log_probs": log_probs.tolist(), "tolerance": GOLDEN_TOLERANCE}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def declared_options() -> dict:
    """The sampling options' declarations (generate/picking.py) as the module checks them."""
    hints = typing.get_type_hints(SamplingOptions)
    out = {}
    for field in fields(SamplingOptions):
        spec = specs(SamplingOptions)[field.name][1]
        kind = {bool: "bool", int: "int", float: "float"}[hints[field.name]]
        entry = {"type": kind, "default": field.default, "help": spec.help}
        if spec.low is not None or spec.high is not None:
            entry |= {"low": spec.low, "low_open": spec.low_open, "high": spec.high, "high_open": spec.high_open}
            entry["bounds"] = spec.bounds_text()
        out[_camel(field.name)] = entry
    return out


def manifest(model: CharRNN, vocab: Vocab, card: dict, mode: str, blob: bytes, table: list, seen: CharRNN) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": model.config.to_json(),
        "vocab": {"symbol": vocab.symbol, "code_points": [ord(c) for c in vocab.chars], "lead_in": vocab.lead_in},
        "quantize": mode,
        "weights": {"file": WEIGHTS_FILE, "bytes": len(blob), "crc32": zlib.crc32(blob)},
        "tensors": table,
        "golden": golden(seen, vocab),
        "options": declared_options(),
        "card": card | {"parameters": count_parameters(model), "quantize": mode},
    }


def _is_export(path: Path) -> bool:
    try:
        return json.loads((path / "manifest.json").read_text())["format"] == FORMAT
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _replace_folder(built: Path, out: Path) -> None:
    """Puts `built` where `out` is, so that a failed export leaves the previous one whole."""
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not _is_export(out)):
            raise CharRNNError(f"{out} exists and is not a charrnn web export: choose another folder")
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(built, out)
        shutil.rmtree(old)
    else:
        os.replace(built, out)


def export_web(model: CharRNN, vocab: Vocab, out: str | os.PathLike, mode: str = "fp32", card: dict | None = None,
               single_file: bool = False) -> tuple[Path, CharRNN]:  # fmt: skip
    """Writes the export to the folder `out` (or with `single_file`, one HTML file); returns the path
    and the model on the weights the browser will use (the dequantised ones)."""
    model = model.cpu().eval()
    blob, table, seen = quantize(model, mode)
    meta = manifest(model, vocab, card or {}, mode, blob, table, seen)
    out = Path(out)
    if single_file:
        return write_single_file(out, meta, blob), seen
    out.parent.mkdir(parents=True, exist_ok=True)
    built = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name in ASSETS:
            (built / name).write_text(asset_text(name), encoding="utf-8")
        (built / WEIGHTS_FILE).write_bytes(blob)
        (built / "manifest.json").write_text(json.dumps(meta), encoding="utf-8")
        built.chmod(0o755)
        _replace_folder(built, out)
    finally:
        shutil.rmtree(built, ignore_errors=True)
    return out, seen
