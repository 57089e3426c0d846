"""Peak memory of `charrnn train` and `charrnn eval`, and evaluation speed, against corpus size.

Makes synthetic texts of 1, 10 and 100 MB (Anna Karenina's lines, shuffled and repeated), runs
each command in its own process and reads that process's peak resident memory. A process that
only imports charrnn and torch is the baseline; what matters is the growth above it per byte of
text, which should stay near the one byte per character the encoded ids take.

    python benchmarks/bench_memory.py [--sizes-mb 1,10,100] [--prepared-mb 10,1000]

With --prepared-mb, the texts are first prepared (`charrnn prepare`, the text then deleted) and
`charrnn train` runs on the memory-mapped corpus with its validation capped (--val-max-chars'
default): what is measured is its peak anonymous memory (RssAnon, sampled every 20 ms), which the
map's page cache does not count.
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


def peak_anon_mb(argv: list[str]) -> float:
    """The highest RssAnon of one command's process, sampled every 20 ms."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
            peak = max(peak, next(int(line.split()[1]) for line in status.splitlines() if line.startswith("RssAnon:")))
        except (OSError, StopIteration):
            pass
        time.sleep(0.02)
    if process.returncode:
        raise RuntimeError(f"{argv} failed: {process.stderr.read()}")
    return peak / 1024


def prepared_rows(sizes: list[int], workdir: Path) -> list[dict]:
    cli = [sys.executable, "-m", "charrnn"]
    rows = []
    for megabytes in sizes:
        text, corpus, run = (
            workdir / f"p{megabytes}.txt",
            workdir / f"corpus-{megabytes}",
            workdir / f"prun-{megabytes}",
        )
        make_text(text, megabytes)
        subprocess.run([*cli, "prepare", str(text), "--out", str(corpus)], check=True, capture_output=True)
        text.unlink()
        train = [*cli, "train", str(corpus), "--out", str(run), *MODEL, "--max-steps", "20", "--eval-every", "10"]
        rows.append({"corpus_mb": megabytes, "train_anon_mb": peak_anon_mb(train)})
        print(rows[-1], flush=True)
        shutil.rmtree(run)
        shutil.rmtree(corpus)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", default="1,10,100")
    parser.add_argument("--prepared-mb", default="", help="prepared corpora to train on instead, e.g. 10,1000")
    args = parser.parse_args()
    if args.prepared_mb:
        workdir = Path(tempfile.mkdtemp(prefix="charrnn-memory-"))
        try:
            rows = prepared_rows([int(m) for m in args.prepared_mb.split(",")], workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        print_table(
            ["prepared corpus MB", "train peak RssAnon MB", "vs the first"],
            [[r["corpus_mb"], f"{r['train_anon_mb']:.0f}", f"{r['train_anon_mb'] / rows[0]['train_anon_mb']:.2f}x"]
             for r in rows],
            title="charrnn train on a memory-mapped corpus, validation capped (1-layer 32-unit LSTM, 20 steps)",
        )  # fmt: skip
        save_results("memory-prepared", {"rows": rows})
        return
    cli = [sys.executable, "-m", "charrnn"]
    workdir = Path(tempfile.mkdtemp(prefix="charrnn-memory-"))
    rows = []
    try:
        baseline, _, _ = peak_rss_mb([sys.executable, "-c", "import charrnn.cli.main, torch"])
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
