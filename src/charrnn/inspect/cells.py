"""Interpretable cells found for you: every unit's activation over a text (each layer's h, c for an LSTM,
and each gate) correlated with every detector of the text, the best units per detector first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from .trace import Trace

THRESHOLD = 0.3  # |r| at which a unit counts as interpretable in the summary


@dataclass(frozen=True)
class CellMatch:
    detector: str
    layer: int  # from 1, as --clamp names layers
    unit: int
    kind: str  # "h", "c" or a gate
    correlation: float

    def to_json(self) -> dict:
        return asdict(self)


def _standardized(values: np.ndarray) -> np.ndarray | None:
    """(values - mean) / std along the first axis; None for a detector that never changes."""
    centred = values - values.mean(axis=0)
    std = centred.std(axis=0)
    if centred.ndim == 1:
        return None if std == 0 else centred / std
    return centred / np.where(std == 0, np.inf, std)  # a unit that never changes correlates with nothing


def correlations(trace: Trace, detector: np.ndarray) -> dict[tuple[int, str], np.ndarray]:
    """Pearson's r of every unit with `detector`: {(layer, kind): (hidden,)}; empty if it is constant."""
    d = _standardized(detector.astype(np.float64))
    if d is None:
        return {}
    return {
        (index + 1, kind): _standardized(arrays[kind].astype(np.float64)).T @ d / len(d)
        for index, arrays in enumerate(trace.layers)
        for kind in arrays
    }


def best_cells(
    trace: Trace, detectors: dict[str, Callable[[str], np.ndarray]], top: int = 3, kinds: tuple[str, ...] | None = None
) -> tuple[list[CellMatch], dict[str, float]]:
    """The `top` units of each detector by |r| (among `kinds`, all by default), and for each kind the
    fraction of its units whose best |r| with any detector reaches `THRESHOLD`."""
    rows, strongest = [], {}
    for name, detect in detectors.items():
        found = correlations(trace, detect(trace.text))
        candidates = [
            (abs(r), CellMatch(name, layer, int(unit), kind, float(r)))
            for (layer, kind), values in found.items()
            if kinds is None or kind in kinds
            for unit, r in enumerate(values)
        ]
        candidates.sort(key=lambda pair: -pair[0])
        rows += [match for _, match in candidates[:top]]
        for (layer, kind), values in found.items():
            strongest[(layer, kind)] = np.maximum(strongest.get((layer, kind), 0), np.abs(values))
    shares: dict[str, list[np.ndarray]] = {}
    for (_, kind), values in strongest.items():
        shares.setdefault(kind, []).append(values >= THRESHOLD)
    return rows, {kind: float(np.concatenate(parts).mean()) for kind, parts in shares.items()}


def gate_saturation(trace: Trace) -> dict[int, dict[str, dict[str, float]]]:
    """Per layer and gate, the fraction of time its units spend below 0.1 ("left") and above 0.9
    ("right"), averaged over units: the paper's saturation summary (the candidate is a tanh, left out)."""
    out = {}
    for index, arrays in enumerate(trace.layers):
        gates = {k: v for k, v in arrays.items() if k not in ("h", "c", "candidate")}
        out[index + 1] = {
            kind: {"left": float((v < 0.1).mean()), "right": float((v > 0.9).mean())} for kind, v in gates.items()
        }
    return out
