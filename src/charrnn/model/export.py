"""`charrnn export --onnx`: a trained model as ONNX, for runtimes without torch (the `onnx` extra).

The graph takes character ids (batch, time) and the recurrent state, and returns the logits at every
position and the state after the last, all with a dynamic batch and time: a runtime primes the state
with a whole prompt, then steps one character at a time. The state is explicit: `h` (and `c` for an
LSTM), each (layers, batch, hidden). It is traced from the plain modules (embedding, `nn.LSTM`/`GRU`/
`RNN`, the output layer), never the CPU fast paths, with torch's TorchScript-based exporter
(`torch.onnx.export(..., dynamo=False)`), whose graphs keep the time axis dynamic. The vocabulary and
the architecture ride along as metadata, so the file alone is enough to sample from.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ..data.vocab import Vocab
from ..errors import CharRNNError
from .network import CharRNN

INSTALL_HINT = "charrnn export --onnx needs the onnx extra: pip install -e '.[onnx]'"
EXPORTER = "torch.onnx.export (TorchScript-based, dynamo=False)"
OPSET = 17


class _Graph(nn.Module):
    """The model as the exported graph sees it: ids and state in, logits and state out."""

    def __init__(self, model: CharRNN):
        super().__init__()
        self.embed, self.rnn, self.head = model.embed, model.rnn, model.head
        self.lstm = model.config.cell == "lstm"

    def forward(self, ids: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None = None):
        out, state = self.rnn(self.embed(ids), (h, c) if self.lstm else h)
        logits = self.head(out)
        return (logits, *state) if self.lstm else (logits, state)


def state_names(cell: str) -> list[str]:
    return ["h", "c"] if cell == "lstm" else ["h"]


def export_onnx(model: CharRNN, vocab: Vocab, out: str | os.PathLike) -> Path:
    """Writes `model` to `out` as ONNX (atomically: a failed export leaves no file)."""
    try:
        import onnx
    except ImportError as exc:
        raise CharRNNError(INSTALL_HINT) from exc
    out = Path(out)
    config = model.config
    names = state_names(config.cell)
    graph = _Graph(model.cpu().eval()).eval()  # in eval mode itself: the exporter restores its mode, recursively
    example = (torch.zeros(1, 2, dtype=torch.int64), *(torch.zeros(config.layers, 1, config.hidden) for _ in names))
    axes = {"ids": {0: "batch", 1: "time"}, "logits": {0: "batch", 1: "time"}}
    axes.update({n: {1: "batch"} for n in names} | {f"{n}_n": {1: "batch"} for n in names})
    temporary = out.with_name(f".tmp-{out.name}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracing notes, not the user's concern
            torch.onnx.export(graph, example, str(temporary), dynamo=False, opset_version=OPSET,
                              input_names=["ids", *names], output_names=["logits", *(f"{n}_n" for n in names)],
                              dynamic_axes=axes)  # fmt: skip
        proto = onnx.load(str(temporary))
        meta = {"vocab": json.dumps("".join(vocab.chars)), "model": json.dumps(config.to_json()), "exporter": EXPORTER}
        meta["lead_in"] = json.dumps(vocab.lead_in)  # what a prime is read after (vocab.py)
        meta["symbol"] = json.dumps(vocab.symbol)  # "byte": each vocabulary entry is the byte of its code point
        for key, value in meta.items():
            proto.metadata_props.add(key=f"charrnn.{key}", value=value)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(temporary))
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)
    return out
