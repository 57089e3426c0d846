"""`charrnn prepare` on synthetic corpora of 10 MB, 100 MB and 1 GB (built here, deleted after): its
throughput and peak RSS, beside the in-memory encoding most char-RNN prepare scripts do (read the whole
text, map each character through a dict into a list, then an array; at 10 and 100 MB only: at 1 GB
it would not fit this machine). Each is a process of its own, timed with its peak RSS by GNU time.

    python benchmarks/bench_prepare.py [--sizes 10,100,1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import CORPORA, print_table, save_results

IN_MEMORY = """
import sys
import numpy as np
text = open(sys.argv[1], encoding="utf-8").read()
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
ids = np.array([stoi[c] for c in text], dtype=np.uint8)
ids.tofile(sys.argv[2])
"""


def make_corpus(path: Path, megabytes: int) -> int:
    """anna.txt over and over (each copy a little different, so it is not one block repeated) to the size."""
    base = CORPORA["anna"].read_text(encoding="utf-8")
    target, written, copy = megabytes * 1_000_000, 0, 0
    with open(path, "w", encoding="utf-8") as f:
        while written < target:
            piece = f"\n[copy {copy}]\n" + base
            piece = piece[: target - written] if written + len(piece.encode()) > target else piece
            f.write(piece)
            written += len(piece.encode())
            copy += 1
    return path.stat().st_size


def timed(argv: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one child process, measured by GNU time: a child forked from this
    process (which holds torch) would count this process's pages until it execs."""
    done = subprocess.run(["/usr/bin/time", "-f", "%e %M", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, check=True)  # fmt: skip
    seconds, kilobytes = done.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kilobytes) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000", help="corpus sizes in MB")
    args = parser.parse_args()
    rows = []
    for megabytes in map(int, args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="charrnn-prepare-", dir=os.environ.get("TMPDIR")) as work:
            text = Path(work) / "corpus.txt"
            size = make_corpus(text, megabytes)
            seconds, rss = timed([sys.executable, "-m", "charrnn", "prepare", str(text), "--out", f"{work}/prepared"])
            row = {"mb": size / 1e6, "prepare_s": seconds, "prepare_mb_s": size / 1e6 / seconds, "prepare_rss_mb": rss}
            if megabytes <= 100:
                plain_s, plain_rss = timed([sys.executable, "-c", IN_MEMORY, str(text), f"{work}/plain.bin"])
                row |= {"plain_s": plain_s, "plain_mb_s": size / 1e6 / plain_s, "plain_rss_mb": plain_rss}
            rows.append(row)
            print(row, flush=True)

    def cell(row, key, fmt):
        return format(row[key], fmt) if key in row else "-"

    print_table(
        ["corpus MB", "prepare MB/s", "prepare peak RSS MB", "in-memory MB/s", "in-memory peak RSS MB"],
        [[f"{r['mb']:.0f}", cell(r, "prepare_mb_s", ".0f"), cell(r, "prepare_rss_mb", ".0f"),
          cell(r, "plain_mb_s", ".1f"), cell(r, "plain_rss_mb", ".0f")] for r in rows],
        title="charrnn prepare against an in-memory encoding (each a process of its own)",
    )  # fmt: skip
    save_results("prepare", {"rows": rows})


if __name__ == "__main__":
    main()
