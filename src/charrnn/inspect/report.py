"""`charrnn inspect`: one self-contained HTML file (data, script and style inline; no CDN) that shows a
trace: the text coloured by any unit, the five likeliest next characters under each character on
hover, each character shaded by its loss, gate saturation per layer, and samples across checkpoints.

Activations go in as bytes (a value in [-1, 1] as 0..254: h, tanh(c) as Karpathy's figures show the
cell, and gates in [0, 1] mapped onto the same range), base64 in a JSON block. Every unit's h and c go
in while that stays under `MAX_VALUES` values, the gates of the units the detectors found; past it (long
texts, wide models) only those units, so a 100,000-character report stays a few MB.
"""

from __future__ import annotations

import base64
import json
from importlib import resources

import numpy as np

from ..data.vocab import Vocab
from .cells import CellMatch, gate_saturation
from .trace import Trace

MAX_VALUES = 8_000_000
MAX_NATS = 10.0  # surprisal is shaded up to this many nats


def _bytes(values: np.ndarray) -> str:
    """Values in [-1, 1] as base64 of one byte each (0..254)."""
    return base64.b64encode(np.round((np.clip(values, -1, 1) + 1) * 127).astype(np.uint8).tobytes()).decode()


def _unit_values(trace: Trace, kind: str, layer: int, unit: int) -> np.ndarray:
    values = trace.layers[layer - 1][kind][:, unit]
    if kind == "c":
        return np.tanh(values)
    return values * 2 - 1 if kind not in ("h", "candidate") else values  # gates: [0, 1] -> [-1, 1]


def report_data(trace: Trace, vocab: Vocab, cells: list[CellMatch], samples: list[dict], name: str) -> dict:
    """Everything the page shows, as JSON."""
    hidden = trace.layers[0]["h"].shape[1]
    kinds = trace.kinds()
    states = [kind for kind in kinds if kind in ("h", "c")]
    # every unit's states when they fit, the gates of the detectors' units only
    everything = len(trace.text) * hidden * len(states) * len(trace.layers) <= MAX_VALUES
    featured = sorted({(c.layer, c.unit) for c in cells})
    units = [(layer, unit) for layer in range(1, len(trace.layers) + 1) for unit in range(hidden)]
    activations = {
        f"{layer}:{unit}:{kind}": _bytes(_unit_values(trace, kind, layer, unit))
        for layer, unit in (units if everything else featured)
        for kind in states
    }
    activations.update(
        {
            f"{layer}:{unit}:{kind}": _bytes(_unit_values(trace, kind, layer, unit))
            for layer, unit in featured
            for kind in kinds
            if kind not in states
        }
    )
    probs = np.exp(trace.top_log_probs)
    surprisal = np.nan_to_num(-trace.log_probs, nan=0.0)
    return {
        "name": name,
        "text": trace.text,  # a byte run's symbols one per byte, so that positions match the arrays
        "symbols": [vocab.shown(c)[1:-1] if vocab.byte_level else c for c in vocab.chars],
        "layers": len(trace.layers),
        "hidden": hidden,
        "kinds": list(kinds),
        "all_units": everything,  # False: only the detectors' units can be chosen
        "activations": activations,
        "cells": [c.to_json() for c in cells],
        "top_ids": base64.b64encode(trace.top_ids.astype(np.uint16).tobytes()).decode(),
        "top_probs": base64.b64encode(np.round(probs * 255).astype(np.uint8).tobytes()).decode(),
        "top_k": int(trace.top_ids.shape[1]),
        "surprisal": base64.b64encode(
            np.round(np.clip(surprisal / MAX_NATS, 0, 1) * 255).astype(np.uint8).tobytes()
        ).decode(),
        "saturation": _saturation_points(trace),
        "summary": gate_saturation(trace),
        "samples": samples,
    }


def _saturation_points(trace: Trace) -> dict:
    """Per layer and gate, each unit's (fraction of time below 0.1, fraction above 0.9): the paper's scatter."""
    out = {}
    for index, arrays in enumerate(trace.layers):
        gates = {k: v for k, v in arrays.items() if k not in ("h", "c", "candidate")}
        out[index + 1] = {
            kind: np.round(np.stack([(v < 0.1).mean(axis=0), (v > 0.9).mean(axis=0)], axis=1), 3).tolist()
            for kind, v in gates.items()
        }
    return out


def write_report(data: dict, out) -> int:
    """The page with `data` inline; returns its size in bytes."""
    page = resources.files("charrnn.inspect").joinpath("report.html").read_text(encoding="utf-8")
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    html = page.replace("/*DATA*/null", payload)
    encoded = html.encode("utf-8")
    with open(out, "wb") as f:
        f.write(encoded)
    return len(encoded)
