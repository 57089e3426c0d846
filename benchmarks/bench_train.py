"""Training throughput, side by side in one run, for three sizes:

    2x128 (batch 64x50), 2x256 (64x100), 2x512 (100x100, the notebook's); 83-character vocabulary.

For each size it measures, interleaved so that machine noise hits all alike (medians):
  * ceiling  - the fp32 matrix multiplies the model needs, timed alone on exactly its shapes
               (batched input/output projections, per-step recurrent products, their gradients),
               each through the faster of MKL (torch.mm) and oneDNN (which torch's CPU LSTM uses);
               also the peak rate of one large multiply in each; and the same floor were every
               step's recurrent products of all layers one batched call (a wavefront's best case),
               with the speed-up over the reference that this would allow at most
  * bare     - charrnn's model: forward, backward, clip, Adam step, nothing else
  * ref      - benchmarks/reference_notebook.py, the plain port a user would write, in a process of its
               own (as a user's script runs); "ref same-malloc" the same with charrnn's allocator setting
               (charrnn.training.allocator), which separates what the code gains from what the setting gains
  * loop     - charrnn's real training loop (data, metrics, logging), plus validation and a
               checkpoint save timed alone and spread over the default cadence

    python benchmarks/bench_train.py [--sizes 2x128,2x256,2x512] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from charrnn.data.dataset import prepare_data
from charrnn.model import onednn
from charrnn.model.network import ModelConfig
from charrnn.training import allocator
from charrnn.training.build import build_trainer
from charrnn.training.config import TrainConfig
from charrnn.training.trainer import StopSignals, Trainer
from reference_notebook import ReferenceProcess

from common import CORPORA, median_time, print_table, save_results

VOCAB = 83


@dataclass(frozen=True)
class Size:
    name: str
    hidden: int
    batch: int
    steps: int
    layers: int = 2

    @property
    def chars(self) -> int:
        return self.batch * self.steps

    def macs_per_char(self) -> int:
        """Multiply-accumulates per character of the forward pass (input width = vocabulary, as one-hot)."""
        h, macs, width = self.hidden, 0, VOCAB
        for _ in range(self.layers):
            macs += 4 * h * (width + h)
            width = h
        return macs + h * VOCAB

    def train_flops(self) -> int:
        return 6 * self.macs_per_char() * self.chars  # forward 2, backward 4

    @property
    def repeats(self) -> int:
        """Steps per timing: enough that a small model's timing is not one 20 ms step (2x128: 8)."""
        return max(1, round(40e9 / self.train_flops()))


SIZES = {s.name: s for s in (Size("2x128", 128, 64, 50), Size("2x256", 256, 64, 100), Size("2x512", 512, 100, 100))}


def mkl_gemm_seconds(m: int, k: int, n: int, repeats: int = 5) -> float:
    """torch.mm: MKL on a CPU build."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    return median_time(lambda: torch.mm(a, b), repeats, warmup=2)


def onednn_gemm_seconds(m: int, k: int, n: int, repeats: int = 5) -> float:
    """The same product through oneDNN (the library behind torch's CPU LSTM), its weight packed once."""
    if not onednn.available():
        return float("inf")
    a, b = torch.randn(m, k), onednn.pack(torch.randn(n, k), m)
    return median_time(lambda: onednn.linear(a, b), repeats, warmup=2)


def gemm_seconds(m: int, k: int, n: int, repeats: int = 5) -> float:
    """The faster of the two libraries on this shape: on AMD processors MKL runs fp32 at well under
    oneDNN's speed (here ~180 against ~470 GFLOP/s), so timing MKL alone understates the ceiling."""
    return min(mkl_gemm_seconds(m, k, n, repeats), onednn_gemm_seconds(m, k, n, repeats))


def bmm_seconds(groups: int, m: int, k: int, n: int, repeats: int = 5) -> float:
    """`groups` products in one call (MKL), or one after another through oneDNN if that is faster."""
    a, b = torch.randn(groups, m, k), torch.randn(groups, k, n)
    batched = median_time(lambda: torch.bmm(a, b), repeats, warmup=2)
    return min(batched, groups * onednn_gemm_seconds(m, k, n, repeats))


def ceiling_seconds(size: Size) -> tuple[float, float]:
    """Time of the model's matrix multiplies alone, on its own shapes: the floor for one batch.

    Also the same floor were the layers run as a wavefront (layer l at step t beside layer l+1 at
    step t-1), where each step's recurrent products of all layers, and their gradients, are one
    batched call: the most such a scheme could save, measured rather than assumed.
    """
    h, bs, g = size.hidden, size.chars, 4 * size.hidden
    total, width = 0.0, VOCAB
    for _ in range(size.layers):
        # batched over all steps: input projection forward, its input gradient, both weight gradients
        total += gemm_seconds(bs, width, g) + gemm_seconds(bs, g, width)
        total += gemm_seconds(g, bs, width) + gemm_seconds(g, bs, h)
        width = h
    total += gemm_seconds(bs, h, VOCAB) + gemm_seconds(bs, VOCAB, h) + gemm_seconds(VOCAB, bs, h)
    # per step: recurrent product forward and its gradient, one call per layer or one for all
    per_layer = size.layers * (gemm_seconds(size.batch, h, g) + gemm_seconds(size.batch, g, h))
    together = bmm_seconds(size.layers, size.batch, h, g) + bmm_seconds(size.layers, size.batch, g, h)
    return total + size.steps * per_layer, total + size.steps * together


def peak_gflops() -> dict[str, float]:
    n = 2048
    return {
        "mkl": 2 * n**3 / mkl_gemm_seconds(n, n, n) / 1e9,
        "onednn": 2 * n**3 / onednn_gemm_seconds(n, n, n) / 1e9,
    }


def make_trainer(size: Size, text: Path, out: Path, **overrides) -> Trainer:
    """A Trainer for `size` with the notebook's input width and dropout; `overrides` are TrainConfig fields."""
    config = TrainConfig(
        texts=(str(text),),
        out=str(out),
        model=ModelConfig(hidden=size.hidden, layers=size.layers, embed_dim=VOCAB, dropout=0.5),
        batch_size=size.batch,
        seq_len=size.steps,
        lr=1e-3,
        max_steps=10**9,
        **overrides,
    )
    out.mkdir(parents=True, exist_ok=True)
    data = prepare_data(config)
    allocator.keep_freed_memory()  # as the CLI sets it, after the text is read
    return build_trainer(config, data, out, stream=open(os.devnull, "w"))


def bare_step(trainer: Trainer) -> None:
    trainer.train_step(1e-3)


def loop_seconds_per_step(trainer: Trainer, steps: int) -> float:
    """The real loop (signals, metrics.csv, progress lines) per step, less the validation and save it runs
    at its end, each timed as it happens (the same work timed apart varies by more than the loop costs)."""
    spent = []

    def timed(work):
        def run(*args):
            start = time.perf_counter()
            try:
                return work(*args)
            finally:
                spent.append(time.perf_counter() - start)

        return run

    never = 10**9  # validation and saving only at the end, whatever the step count the bare rounds left
    trainer.config = replace(trainer.config, max_steps=trainer.step + steps, eval_every=never, save_every=never)
    trainer.validate, trainer.save = timed(trainer.validate), timed(trainer.save)
    try:
        start = time.perf_counter()
        trainer.run(StopSignals(), resumed=False)
        return (time.perf_counter() - start - sum(spent)) / steps
    finally:
        del trainer.validate, trainer.save  # back to the class's own methods


def measure(size: Size, text: Path, rounds: int, workdir: Path) -> dict:
    torch.manual_seed(0)
    trainer = make_trainer(size, text, workdir / size.name)
    # the port as a user's script runs it, and with charrnn's allocator setting (the code alone)
    references = [ReferenceProcess(VOCAB, size.hidden, size.layers, size.batch, size.steps, keep) for keep in (0, 1)]
    bare, ref, ref_same_malloc = [], [], []
    try:
        for _ in range(rounds):  # interleaved: noise lands on all
            bare.append(median_time(lambda: bare_step(trainer), size.repeats, warmup=1))
            ref.append(references[0].step_seconds(size.repeats))
            ref_same_malloc.append(references[1].step_seconds(size.repeats))
    finally:
        for reference in references:
            reference.close()
    bare_s, ref_s, ref_same_malloc_s = (statistics.median(times) for times in (bare, ref, ref_same_malloc))
    floor_s, wavefront_floor_s = ceiling_seconds(size)
    validate_s = median_time(trainer.validate, 1, warmup=0)
    save_s = median_time(lambda: trainer.save(0.0), 3, warmup=0)
    loop_s = loop_seconds_per_step(trainer, max(rounds, 4) * size.repeats)
    cadence = TrainConfig().eval_every
    loop_total_s = loop_s + (validate_s + save_s) / cadence
    flops = size.train_flops()
    return {
        "size": size.name,
        "batch": f"{size.batch}x{size.steps}",
        "gflop_per_batch": flops / 1e9,
        "ceiling_s": floor_s,
        "ceiling_gflops": flops / floor_s / 1e9,
        "wavefront_ceiling_s": wavefront_floor_s,
        "best_wavefront_vs_ref": ref_s / wavefront_floor_s,
        "bare_s": bare_s,
        "ref_s": ref_s,
        "ref_same_malloc_s": ref_same_malloc_s,
        "speedup_vs_ref_same_malloc": ref_same_malloc_s / loop_total_s,
        "loop_s": loop_s,
        "loop_total_s": loop_total_s,
        "validate_s": validate_s,
        "save_s": save_s,
        "cadence_steps": cadence,
        "chars_per_s": size.chars / loop_total_s,
        "ref_chars_per_s": size.chars / ref_s,
        "share_of_ceiling": floor_s / loop_total_s,
        "speedup_vs_ref": ref_s / loop_total_s,
        "loop_overhead": loop_total_s / bare_s - 1,
        "mflop_per_char": flops / size.chars / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="charrnn-bench-"))
    try:
        peak = peak_gflops()
        rows = [measure(SIZES[name], CORPORA["anna"], args.rounds, workdir) for name in args.sizes.split(",")]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"peak fp32 GEMM (2048^3), {torch.get_num_threads()} threads: MKL (torch.mm) {peak['mkl']:.0f} GFLOP/s, "
        f"oneDNN {peak['onednn']:.0f} GFLOP/s; the ceiling takes the faster of the two for each shape"
    )
    print_table(
        ["size", "batch", "MFLOP/char", "ceiling s", "bare s", "loop s", "ref s", "ref same-malloc s", "chars/s",
         "ref chars/s", "of ceiling", "vs ref", "vs ref same-malloc", "loop overhead", "wavefront ceiling s",
         "its best vs ref"],
        [[r["size"], r["batch"], f"{r['mflop_per_char']:.1f}", f"{r['ceiling_s']:.3f}", f"{r['bare_s']:.3f}",
          f"{r['loop_total_s']:.3f}", f"{r['ref_s']:.3f}", f"{r['ref_same_malloc_s']:.3f}",
          f"{r['chars_per_s']:,.0f}", f"{r['ref_chars_per_s']:,.0f}", f"{r['share_of_ceiling']:.0%}",
          f"{r['speedup_vs_ref']:.2f}x", f"{r['speedup_vs_ref_same_malloc']:.2f}x", f"{r['loop_overhead']:+.1%}",
          f"{r['wavefront_ceiling_s']:.3f}", f"{r['best_wavefront_vs_ref']:.2f}x"] for r in rows],
        title="Training throughput (seconds per batch, medians; loop includes validation + save every "
        f"{rows[0]['cadence_steps']} steps)",
    )  # fmt: skip
    save_results("train", {"peak_gflops": peak, "sizes": rows})


if __name__ == "__main__":
    main()
