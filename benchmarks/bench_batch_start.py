"""What starting a batch costs the sampler's step: `charrnn serve` starts one whenever a row joins or
leaves the running batch, so a burst of clients starts several.

For the default 1x512 and the notebook's 2x512 LSTM (83-character vocabulary, untrained weights), at
each batch size: the time `RecurrentStep.start` takes now (the weights made once, for every size),
beside the time packing the step's matrices into oneDNN's layout for that batch takes (what each start
cost when the weights were packed per batch), and one step at that size, for scale. Medians of
interleaved repeats; the CPU only.

    python benchmarks/bench_batch_start.py [--batches 2,9,27,48,64] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from charrnn.generate.step import _MATRICES, RecurrentStep
from charrnn.model import onednn
from charrnn.model.network import CharRNN, ModelConfig

from common import print_table, save_results

SIZES = {"1x512": 1, "2x512": 2}


def packing_ms(step: RecurrentStep, batch: int) -> float:
    start = time.perf_counter()
    for name in _MATRICES:
        for weight in step.weights[name]:
            onednn.pack(weight.t(), batch)
    return (time.perf_counter() - start) * 1e3


def start_and_first_step_ms(step: RecurrentStep, batch: int) -> tuple[float, float]:
    state = tuple(torch.zeros(step.layers, batch, step.hidden) for _ in range(2))
    ids = torch.zeros(batch, dtype=torch.long)
    start = time.perf_counter()
    buffers = step.start(state)
    started = time.perf_counter()
    step(ids, buffers)
    return (started - start) * 1e3, (time.perf_counter() - started) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="2,9,27,48,64")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if not onednn.available():
        raise SystemExit("oneDNN's inner product is not callable in this torch build: nothing to compare")
    batches = [int(b) for b in args.batches.split(",")]
    rows = []
    with torch.inference_mode():
        for size, layers in SIZES.items():
            torch.manual_seed(0)
            step = RecurrentStep(CharRNN(ModelConfig(hidden=512, layers=layers).for_vocab(83)).eval())
            start_and_first_step_ms(step, 2)  # the weights are made here, once
            for batch in batches:
                starts, firsts, packs = [], [], []
                for _ in range(args.repeats):
                    started, first = start_and_first_step_ms(step, batch)
                    starts.append(started)
                    firsts.append(first)
                    packs.append(packing_ms(step, batch))
                rows.append([size, batch, *(f"{statistics.median(v):.2f}" for v in (starts, packs, firsts))])
    header = ["size", "batch", "start ms", "packing for the batch ms", "one step ms"]
    print_table(header, rows)
    save_results("batch-start", {"header": header, "rows": rows})


if __name__ == "__main__":
    main()
