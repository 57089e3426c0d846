"""Training step time by arithmetic precision on one device, made for the GPU check: for each model
size, charrnn's bare step (forward, backward, clip, Adam) in fp32 and in bf16 and fp16 autocast
(`--precision`), beside the plain notebook port (fp32) on the same device. Interleaved rounds, medians;
prints a table and writes benchmarks/results/precision-*.json.

    python benchmarks/bench_precision.py --device cuda
    python benchmarks/bench_precision.py --device cpu --precisions fp32,bf16 --sizes 2x128 --rounds 3

Validation loss after a fixed budget at each precision is bench_quality's job:
`bench_quality.py --configs notebook --set device=cuda --set precision=bf16 --budgets 1`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from bench_train import SIZES, VOCAB, Size, make_trainer
from reference_notebook import NotebookTrainer

from common import CORPORA, print_table, save_results


def seconds_per_step(step, device: torch.device, steps: int) -> float:
    """Mean seconds of `steps` calls of `step()`, waiting for the GPU to finish before the clock stops."""
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps


def measure(size: Size, precisions: list[str], device: str, rounds: int, steps: int, workdir: Path) -> dict:
    torch.manual_seed(0)
    trainers = {p: make_trainer(size, CORPORA["anna"], workdir / f"{size.name}-{p}", device=device, precision=p)
                for p in precisions}  # fmt: skip
    first = trainers[precisions[0]]
    reference = NotebookTrainer(VOCAB, size.hidden, size.layers, size.batch, device=first.device)
    x, y = first.batches.window_at(0)
    steppers = {p: (lambda t=t: t.train_step(1e-3)) for p, t in trainers.items()}
    steppers["reference"] = lambda: reference.step(x, y)
    times: dict[str, list[float]] = {name: [] for name in steppers}
    for step in steppers.values():  # warm-up: cuDNN plans, allocator, autocast caches
        seconds_per_step(step, first.device, 2)
    for _ in range(rounds):  # interleaved, so drift lands on every variant alike
        for name, step in steppers.items():
            times[name].append(seconds_per_step(step, first.device, steps))
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "size": size.name,
        "batch": f"{size.batch}x{size.steps}",
        "seconds": medians,
        "chars_per_s": {name: size.chars / s for name, s in medians.items()},
        "tflops": {name: size.train_flops() / s / 1e12 for name, s in medians.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--precisions", default="fp32,bf16,fp16")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="steps per round")
    parser.add_argument("--batch-size", type=int, help="sequences per batch for every size (default: each size's own)")
    args = parser.parse_args()
    precisions = args.precisions.split(",")
    workdir = Path(tempfile.mkdtemp(prefix="charrnn-precision-"))
    try:
        sizes = [SIZES[name] for name in args.sizes.split(",")]
        sizes = [replace(s, batch=args.batch_size) for s in sizes] if args.batch_size else sizes
        rows = [measure(size, precisions, args.device, args.rounds, args.steps, workdir) for size in sizes]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    names = [*precisions, "reference"]
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
    print_table(
        ["size", "batch"] + [f"{n} ms" for n in names] + [f"{n} chars/s" for n in names]
        + [f"{p} vs {precisions[0]}" for p in precisions[1:]] + [f"{p} vs ref" for p in precisions],
        [[r["size"], r["batch"]] + [f"{r['seconds'][n] * 1e3:.2f}" for n in names]
         + [f"{r['chars_per_s'][n]:,.0f}" for n in names]
         + [f"{r['seconds'][precisions[0]] / r['seconds'][p]:.2f}x" for p in precisions[1:]]
         + [f"{r['seconds']['reference'] / r['seconds'][p]:.2f}x" for p in precisions] for r in rows],
        title=f"Training step by precision on {device_name} (bare step, medians of {args.rounds} rounds "
        f"of {args.steps} steps; reference = the plain notebook port in fp32)",
    )  # fmt: skip
    save_results("precision", {"device": device_name, "sizes": rows})


if __name__ == "__main__":
    main()
