"""Where the model beats or loses to an n-gram fitted on the run's own training part (Karpathy, Johnson and
Fei-Fei 2015's error analysis): mean loss by character class, and on closing brackets and quotes by the
distance back to the opening they close, where an n-gram's short context cannot reach."""

from __future__ import annotations

import numpy as np

CLASSES = {
    "lower-case letter": str.islower,
    "capital": str.isupper,
    "digit": str.isdigit,
    "space": lambda ch: ch == " ",
    "line break": lambda ch: ch == "\n",
    "punctuation": lambda ch: not ch.isalnum() and not ch.isspace(),
}
PAIRS = {")": "(", "]": "[", "}": "{", "”": "“"}
DISTANCES = ((1, 5), (6, 20), (21, 60), (61, None))


def closing_distances(text: str) -> dict[int, int]:
    """{position of a closing bracket or quote: how far back its opening is}."""
    stacks: dict[str, list[int]] = {}
    quote_open: int | None = None
    out = {}
    for t, ch in enumerate(text):
        if ch in PAIRS.values():
            stacks.setdefault(ch, []).append(t)
        elif ch in PAIRS and stacks.get(PAIRS[ch]):
            out[t] = t - stacks[PAIRS[ch]].pop()
        elif ch == '"':
            if quote_open is None:
                quote_open = t
            else:
                out[t], quote_open = t - quote_open, None
    return out


def _row(name: str, mask: np.ndarray, model: np.ndarray, ngram: np.ndarray) -> dict:
    count = int(mask.sum())
    return {
        "name": name,
        "count": count,
        "model": float(model[mask].mean()) if count else None,
        "ngram": float(ngram[mask].mean()) if count else None,
    }


def versus(text: str, model_loss: np.ndarray, ngram_loss: np.ndarray) -> dict:
    """Mean nats per character of the model and the n-gram, by class and by closing distance (the first
    character, which has no context, left out)."""
    scored = np.isfinite(model_loss)
    classes = [
        _row(name, scored & np.fromiter(map(test, text), bool, len(text)), model_loss, ngram_loss)
        for name, test in CLASSES.items()
    ]
    distances = closing_distances(text)
    where, far = np.array(list(distances), dtype=int), np.array(list(distances.values()), dtype=int)
    closing = []
    for low, high in DISTANCES:
        mask = np.zeros(len(text), bool)
        chosen = where[(far >= low) & ((far <= high) if high else True)]
        mask[chosen] = True
        closing.append(_row(f"{low}-{high}" if high else f"{low}+", mask & scored, model_loss, ngram_loss))
    return {"classes": classes, "closing": closing}
