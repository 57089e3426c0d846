"""nanoGPT's own training script on tiny Shakespeare for a fixed time on this machine, its result measured
as charrnn measures its own: the mean loss over the whole validation part (the last 10%, nanoGPT's split).

nanoGPT is not part of charrnn: give a checkout of it (`--nanogpt DIR`, with data/shakespeare_char
prepared by its prepare.py). Its `train.py` runs as its README says for the config named, with these
changes only, all flags of its own: `--device=cpu --compile=False`; `--max_iters` and `--lr_decay_iters`
set to the iterations that fit the time (measured first with a short run), so that its schedule ends when
the time does; `--eval_interval` at that same count and `--always_save_checkpoint=True`, so its last
weights are saved; `--eval_iters=20` (its README's CPU setting: its own estimate is then noisier, and the
figure reported here is not that estimate). Its time includes its evaluations, as charrnn's budget
includes its validations.

The whole-validation loss: windows of `block_size` every `block_size // 2` characters; each scores the
characters of its second half (the first window all of its characters), so every character but the first
is scored once, with at least half a block of context.

    python benchmarks/compare_nanogpt.py --nanogpt /tmp/nanogpt --variant cpu --minutes 10
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

VARIANTS = {
    "full": ["config/train_shakespeare_char.py"],
    # the README's "I only have a macbook" command, less the iteration counts set here
    "cpu": ["config/train_shakespeare_char.py", "--block_size=64",
            "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128", "--dropout=0.0"],
}  # fmt: skip
COMMON = ["--device=cpu", "--compile=False", "--eval_iters=20", "--always_save_checkpoint=True"]


def train(nanogpt: Path, flags: list[str], iters: int, out: str, timeout: float | None = None) -> tuple[float, str]:
    argv = [sys.executable, "train.py", *flags, *COMMON, f"--out_dir={out}", f"--max_iters={iters}",
            f"--lr_decay_iters={iters}", f"--eval_interval={iters}", "--log_interval=10"]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=nanogpt, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"nanoGPT's train.py failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start, done.stdout


def seconds_per_iter(nanogpt: Path, flags: list[str]) -> float:
    """From the `time` nanoGPT logs for its iterations (the first, with its evaluation, left out)."""
    _, log = train(nanogpt, flags, 30, "out-probe")
    times = [float(t) for t in re.findall(r"iter (?:[2-9]\d|1\d): loss [\d.]+, time ([\d.]+)ms", log)]
    return float(np.median(times)) / 1000


def whole_validation_loss(nanogpt: Path, out: str) -> tuple[float, int]:
    sys.path.insert(0, str(nanogpt))
    from model import GPT, GPTConfig  # nanoGPT's own model.py

    checkpoint = torch.load(nanogpt / out / "ckpt.pt", map_location="cpu", weights_only=False)
    model = GPT(GPTConfig(**checkpoint["model_args"]))
    model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in checkpoint["model"].items()})
    model.eval()
    val = np.fromfile(nanogpt / "data" / "shakespeare_char" / "val.bin", dtype=np.uint16).astype(np.int64)
    block, summed, count = checkpoint["model_args"]["block_size"], 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(val) - 1, block // 2):
            window = torch.from_numpy(val[start : start + block + 1])
            x, y = window[:-1][None], window[1:][None]
            logits = model(x, y)[0]  # with targets, nanoGPT returns every position's logits
            losses = torch.nn.functional.cross_entropy(logits[0], y[0], reduction="none")
            first = 0 if start == 0 else block // 2
            summed += float(losses[first:].double().sum())
            count += len(losses) - first
            if start + block + 1 >= len(val):
                break
    return summed / count, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nanogpt", type=Path, required=True)
    parser.add_argument("--variant", choices=VARIANTS, default="cpu")
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    flags = VARIANTS[args.variant]
    step_s = seconds_per_iter(args.nanogpt, flags)
    iters = max(1, int(args.minutes * 60 * 0.97 / step_s))  # its evaluations and start take the rest
    out = f"out-charrnn-{args.variant}"
    wall, log = train(args.nanogpt, flags, iters, out, timeout=args.minutes * 60 * 1.5)
    estimates = re.findall(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)", log)
    loss, count = whole_validation_loss(args.nanogpt, out)
    print(f"nanoGPT {args.variant}: {iters} iterations at {step_s * 1000:.0f} ms, {wall:.0f} s in all")
    print(f"its own last estimate (step, train, val): {estimates[-1] if estimates else None}")
    print(f"whole validation part: {loss:.4f} nats/char over {count:,} characters")


if __name__ == "__main__":
    main()
