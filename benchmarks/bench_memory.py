"""Peak memory of `charrnn train` and `charrnn eval`, and evaluation speed, against corpus size.

Makes synthetic texts of 1, 10 and 100 MB (Anna Karenina's lines, shuffled and repeated), runs
each command in its own process and reads that process's peak resident memory. A process that
only imports charrnn and torch is the baseline; what matters is the growth above it per byte of
text, which should stay near the one byte per character the encoded ids take.

    python benchmarks/bench_memory.py [--sizes-mb 1,10,100]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import CORPORA, print_table, save_results

MODEL = ["--hidden", "32", "--embed-dim", "16", "--layers", "1"]


def make_text(path: Path, megabytes: int) -> None:
    lines = CORPORA["anna"].read_text(encoding="utf-8").splitlines(keepends=True)
    rng = random.Random(0)
    target = megabytes * 1_000_000
    with open(path, "w", encoding="utf-8") as f:
        written = 0
        while written < target:
            rng.shuffle(lines)
            chunk = "".join(lines)[: target - written]
            f.write(chunk)
            written += len(chunk)


def peak_rss_mb(argv: list[str]) -> tuple[float, float, str]:
    """(peak resident MB, wall seconds, stdout) of one command in a child process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stdout, stderr = process.stdout.read(), process.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv} failed: {stderr}")
    return usage.ru_maxrss / 1024, wall, stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", default="1,10,100")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "charrnn"]
    workdir = Path(tempfile.mkdtemp(prefix="charrnn-memory-"))
    rows = []
    try:
        baseline, _, _ = peak_rss_mb([sys.executable, "-c", "import charrnn.cli, torch"])
        for megabytes in map(int, args.sizes_mb.split(",")):
            text = workdir / f"text-{megabytes}mb.txt"
            make_text(text, megabytes)
            run = workdir / f"run-{megabytes}"
            train_mb, train_s, _ = peak_rss_mb(
                [*cli, "train", str(text), "--out", str(run), *MODEL, "--max-steps", "3", "--val-fraction", "0.01"]
            )
            eval_mb, eval_s, _ = peak_rss_mb([*cli, "eval", str(run), str(text), "--json"])
            rows.append(
                {
                    "text_mb": megabytes,
                    "train_peak_mb": train_mb,
                    "eval_peak_mb": eval_mb,
                    "train_bytes_per_char": (train_mb - baseline) / megabytes,
                    "eval_bytes_per_char": (eval_mb - baseline) / megabytes,
                    "eval_s": eval_s,
                    "eval_chars_per_s": megabytes * 1e6 / eval_s,
                    "train_s": train_s,
                }
            )
            shutil.rmtree(run)
            text.unlink()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"baseline (import charrnn + torch): {baseline:.0f} MB")
    print_table(
        ["text MB", "train peak MB", "above base /char", "eval peak MB", "above base /char", "eval s", "eval chars/s"],
        [[r["text_mb"], f"{r['train_peak_mb']:.0f}", f"{r['train_bytes_per_char']:.2f} B", f"{r['eval_peak_mb']:.0f}",
          f"{r['eval_bytes_per_char']:.2f} B", f"{r['eval_s']:.1f}", f"{r['eval_chars_per_s']:,.0f}"] for r in rows],
        title="Peak memory against corpus size (1-layer 32-unit LSTM; eval over the whole text)",
    )  # fmt: skip
    save_results("memory", {"baseline_mb": baseline, "sizes": rows})


if __name__ == "__main__":
    main()
