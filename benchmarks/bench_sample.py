"""Sampling speed: characters per second generating 2,000 characters from a primed state, at batch
1 and with 8 and 64 samples in one batch, for 2x128 / 2x256 / 2x512 LSTMs (91-character vocabulary).

At batches of 8 and 64 it also times the same sampler with torch's own matmul and tanh ("plain
torch", how batches ran before their products went through oneDNN), interleaved, and prints the
speed-up. Beside each: the floor set by reading the step's weights once per character (the recurrent,
input and output matrices as one-row products, in turn, timed alone), and the per-character cost
of everything that is not arithmetic (the same sampler on a model too small to compute anything).

    python benchmarks/bench_sample.py [--chars 2000] [--sizes 2x128,2x256,2x512] [--ensemble 3]

`--ensemble K` adds a table: one model against K of them averaged (`charrnn.Ensemble`, `--with`), at
batch 1 and 8, each size timed in turn; K models cost at least K times one, and the rest is the averaging.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
import torch

from charrnn.data.vocab import Vocab
from charrnn.generate.sampler import Sampler
from charrnn.model import onednn
from charrnn.model.ensemble import Ensemble
from charrnn.model.network import CharRNN, ModelConfig

from common import median_time, print_table, save_results

VOCAB = Vocab(tuple(chr(c) for c in range(32, 32 + 91)))  # printable ASCII
HIDDEN = {"2x128": 128, "2x256": 256, "2x512": 512}
PRIME = "The quick brown fox jumps over the lazy dog. " * 4


def make_model(hidden: int, seed: int = 0) -> CharRNN:
    torch.manual_seed(seed)
    return CharRNN(ModelConfig(vocab_size=len(VOCAB), hidden=hidden, layers=2, embed_dim=83))


def make_sampler(hidden: int) -> Sampler:
    return Sampler(make_model(hidden), VOCAB)


def ensemble_rows(sizes: list[str], members: int, chars: int) -> list[list[str]]:
    """chars/s of one model and of `members` models averaged, at batch 1 and 8, and their ratio."""
    rows = []
    for name in sizes:
        one = make_sampler(HIDDEN[name])
        many = Sampler(Ensemble([make_model(HIDDEN[name], seed) for seed in range(members)]), VOCAB)
        for batch in (1, 8):
            alone, averaged = chars_per_s(one, chars, batch), chars_per_s(many, chars, batch)
            rows.append([name, batch, f"{alone:,.0f}", f"{averaged:,.0f}", f"{alone / averaged:.2f}x"])
    return rows


def chars_per_s(sampler: Sampler, chars: int, batch: int) -> float:
    def run():
        for _ in sampler.stream_batch(PRIME, chars, batch, seed=1, top_k=5):
            pass

    return batch * chars / median_time(run, repeats=3, warmup=1)


@contextlib.contextmanager
def plain_torch_batches():
    """Batches through torch's own matmul and tanh, as the sampler ran them before oneDNN: the side-by-side baseline."""
    saved = onednn.available
    onednn.available = lambda: False
    try:
        yield
    finally:
        onednn.available = saved


def batch_speeds(sampler: Sampler, chars: int) -> dict[str, float]:
    """chars/s at batch 1, 8 and 64, and at 8 and 64 the old plain-torch way, interleaved."""
    speeds = {"1": chars_per_s(sampler, chars, 1)}
    for batch in (8, 64):
        speeds[str(batch)] = chars_per_s(sampler, chars, batch)
        with plain_torch_batches():
            speeds[f"{batch} plain torch"] = chars_per_s(sampler, chars, batch)
    return speeds


def weight_read_floor_s(sampler: Sampler) -> float:
    """Seconds to read one step's weight matrices once each, in turn, as the fastest one-row
    products this machine has (numpy's BLAS; the same matrices, so the same cache behaviour)."""
    weights = sampler._step.weights
    matrices = [m.numpy() for m in weights["w_hh"] + weights["w_ih"][1:] + weights["head_w"]]
    rows = [np.ones((1, m.shape[0]), dtype=np.float32) for m in matrices]
    outs = [np.empty((1, m.shape[1]), dtype=np.float32) for m in matrices]

    def read_all():
        for _ in range(100):
            for row, matrix, out in zip(rows, matrices, outs, strict=True):
                np.matmul(row, matrix, out=out)

    return median_time(read_all, 5, warmup=1) / 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chars", type=int, default=2000)
    parser.add_argument("--sizes", default=",".join(HIDDEN))
    parser.add_argument("--ensemble", type=int, default=0, metavar="K", help="also time K models averaged")
    args = parser.parse_args()
    overhead_s = 1 / chars_per_s(make_sampler(4), args.chars, 1)
    rows = []
    for name in args.sizes.split(","):
        sampler = make_sampler(HIDDEN[name])
        weights_mb = sum(p.numel() for p in sampler.model.rnn.parameters()) * 4 / 1e6
        floor_s = weight_read_floor_s(sampler)
        speeds = batch_speeds(sampler, args.chars)
        prime_start = time.perf_counter()
        next(iter(sampler.stream_batch(PRIME * 10, 1, 1, seed=1)))
        rows.append(
            {
                "size": name,
                "weights_mb": weights_mb,
                "floor_chars_per_s": 1 / floor_s,
                "chars_per_s": speeds,
                "share_of_floor_b1": speeds["1"] * floor_s,
                "prime_1800_chars_s": time.perf_counter() - prime_start,
            }
        )
    print(
        f"per-character cost outside arithmetic (2x4 model): {overhead_s * 1e6:.0f} us ({1 / overhead_s:,.0f} chars/s)"
    )
    print_table(
        ["size", "weights MB", "floor chars/s", "batch 1", "batch 8 (total)", "batch 64 (total)", "b1 / floor",
         "8: plain torch", "64: plain torch", "8: speed-up", "64: speed-up"],
        [[r["size"], f"{r['weights_mb']:.1f}", f"{r['floor_chars_per_s']:,.0f}", f"{r['chars_per_s']['1']:,.0f}",
          f"{r['chars_per_s']['8']:,.0f}", f"{r['chars_per_s']['64']:,.0f}", f"{r['share_of_floor_b1']:.0%}",
          *(f"{r['chars_per_s'][f'{b} plain torch']:,.0f}" for b in (8, 64)),
          *(f"{r['chars_per_s'][str(b)] / r['chars_per_s'][f'{b} plain torch']:.2f}x" for b in (8, 64))]
         for r in rows],
        title=f"Sampling speed, {args.chars} characters after a {len(PRIME)}-character prime, top-k 5",
    )  # fmt: skip
    ensemble = ensemble_rows(args.sizes.split(","), args.ensemble, args.chars) if args.ensemble > 1 else []
    if ensemble:
        print_table(
            ["size", "batch", "one model (chars/s)", f"{args.ensemble} averaged (chars/s)", "slower by"],
            ensemble,
            title=f"Sampling one model against {args.ensemble} averaged (total chars/s)",
        )
    save_results("sample", {"overhead_us_per_char": overhead_s * 1e6, "sizes": rows, "ensemble": ensemble})


if __name__ == "__main__":
    main()
