"""How well a run continues text from a cold start: the first characters of sentences in its validation
text (which it never trained on), read from the zero state, against the same characters read after the
paragraph before them.

For each of up to --primes sentence starts, the loss is taken over the sentence's characters 2..L (the
first is what the model reads before predicting anything): cold reads them from the zero state, as
`charrnn sample --prime` does; warm reads --context characters of the text before them first. A model
that learned "a text may start here" has a small gap; one whose zero state was only ever followed by a
few fixed stretches of text has a large one (the gibberish that "Levin" gave as a prime).

    .venv/bin/python benchmarks/bench_cold_start.py RUN [RUN ...] [--primes 300] [--length 40] [--context 300]
"""

from __future__ import annotations

import argparse
import re

import numpy as np
import torch
from torch.nn import functional as F

from charrnn.data.dataset import run_part
from charrnn.runs.rundir import load_model

from common import print_table, save_results

HEAD = 4  # the first predictions, where a cold start goes wrong if it does
SENTENCE_START = re.compile(r"(?:[.!?][\"']?\s+|\n\s*\n)([A-Z])")


def sentence_starts(text: str, count: int, context: int, length: int) -> list[int]:
    """Up to `count` positions where a sentence starts, each with `context` characters before it and
    `length` after it, spread evenly over the text."""
    starts = [m.start(1) for m in SENTENCE_START.finditer(text) if context <= m.start(1) <= len(text) - length]
    if len(starts) <= count:
        return starts
    return [starts[int(i)] for i in np.linspace(0, len(starts) - 1, count)]


@torch.no_grad()
def losses(model, ids: np.ndarray, starts: list[int], context: int, length: int, lead: list[int]) -> dict:
    """Mean nats/char over characters 2..length of each start (and 2..HEAD+1 alone), read cold, after the
    `lead` ids (e.g. a newline), and after `context` characters of the text."""
    reads = {
        "cold": np.stack([ids[s : s + length] for s in starts]),
        "lead": np.stack([np.concatenate([lead, ids[s : s + length]]) for s in starts]),
        "warm": np.stack([ids[s - context : s + length] for s in starts]),
    }
    result = {}
    for name, batch in reads.items():
        batch = torch.tensor(batch, dtype=torch.long)
        logits, _ = model(batch)
        tail = logits[:, -length:-1]  # the predictions of characters 2..length
        nats = F.cross_entropy(tail.reshape(-1, tail.shape[-1]), batch[:, -length + 1 :].reshape(-1), reduction="none")
        nats = nats.reshape(len(starts), length - 1)
        result[name] = nats.mean().item()
        result[f"{name} head"] = nats[:, :HEAD].mean().item()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN")
    parser.add_argument("--primes", type=int, default=300, help="sentence starts to read (default 300)")
    parser.add_argument("--length", type=int, default=40, help="characters read from each start (default 40)")
    parser.add_argument("--context", type=int, default=300, help="characters before a warm read (default 300)")
    args = parser.parse_args()
    rows, results = [], {}
    for run in args.runs:
        model, vocab, info = load_model(run)
        model.eval()
        ids = run_part(run)
        text = vocab.decode(ids)
        starts = sentence_starts(text, args.primes, args.context, args.length)
        lead = list(vocab.encode("\n")) if "\n" in vocab.chars else []
        found = losses(model, ids, starts, args.context, args.length, lead)
        results[run] = {"checkpoint": info.name, "primes": len(starts), **found}
        rows.append([run, len(starts), *(f"{found[k]:.4f}" for k in COLUMNS), f"{found['cold'] - found['warm']:+.4f}"])
    header = ["run", "primes", *COLUMNS, "cold - warm"]
    title = f"nats/char over characters 2..{args.length} (head: 2..{HEAD + 1}) of sentence starts: cold, after a newline, after {args.context}"
    print_table(header, rows, title)
    save_results("cold_start", {"args": vars(args), "runs": results})


COLUMNS = ("cold", "lead", "warm", "cold head", "lead head", "warm head")


if __name__ == "__main__":
    main()
