"""What each of AWD-LSTM's regularisers costs a training step: the median seconds of forward, loss,
backward and Adam for the default 1×512 LSTM and for 2×512 (batch 32 × 50, anna.txt's 83 characters),
with none of them, and with each alone, the variants interleaved round by round in one process.

    python benchmarks/bench_regularisers.py [--rounds 5] [--steps 20]

To compare trees (the step with all of them off, before and after a change), run this file from each
tree alternately with PYTHONPATH=<tree>/src.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch.nn import functional as F

from charrnn.model.network import CharRNN, ModelConfig
from charrnn.training.penalties import activation_penalty

from common import interleaved_seconds, print_table, save_results

VOCAB, BATCH, STEPS = 83, 32, 50
VARIANTS = {
    "none": ({}, 0.0, 0.0),
    "--locked-dropout": ({"locked_dropout": True}, 0.0, 0.0),
    "--input-dropout 0.1": ({"input_dropout": 0.1}, 0.0, 0.0),
    "--embed-dropout 0.1": ({"embed_dropout": 0.1}, 0.0, 0.0),
    "--weight-drop 0.3": ({"weight_drop": 0.3}, 0.0, 0.0),
    "--ar 2 --tar 1": ({}, 2.0, 1.0),
}


def stepper(layers: int, settings: dict, ar: float, tar: float):
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(layers=layers, **settings).for_vocab(VOCAB)).train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3, fused=True)
    ids = torch.randint(0, VOCAB, (BATCH, STEPS + 1))
    state = model.init_state(BATCH)

    def step():
        logits, _, outputs = model(ids[:, :-1], state, outputs=True)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
        loss = loss + activation_penalty(*outputs, ar, tar)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="steps timed per variant and round")
    args = parser.parse_args()
    rows = []
    for layers in (1, 2):
        steps = {name: stepper(layers, *variant) for name, variant in VARIANTS.items()}
        times = interleaved_seconds(steps, args.rounds, args.steps)
        base = statistics.median(times["none"])
        for name, seconds in times.items():
            median = statistics.median(seconds)
            rows.append([f"{layers}x512", name, f"{median * 1000:.1f}", f"{median / base:.3f}"])
    print_table(["model", "regulariser", "ms per step", "of none"], rows, f"median of {args.rounds} rounds")
    save_results("regularisers", {"rows": rows})


if __name__ == "__main__":
    main()
