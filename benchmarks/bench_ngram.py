"""The n-gram baseline's cost and figures: `charrnn ngram` (interpolated Kneser-Ney) of several orders
on anna.txt and tinyshakespeare.txt, characters and bytes, last 10% for validation as train splits.

Each order is fitted and scored in a process of its own, so that its peak memory is its own.

    python benchmarks/bench_ngram.py [--orders 1,3,5,10,20] [--texts anna,shakespeare] [--bytes]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TEXTS = {"anna": DATA / "anna.txt", "shakespeare": DATA / "tinyshakespeare.txt"}


def run(text: Path, order: int, as_bytes: bool) -> dict:
    argv = [sys.executable, "-m", "charrnn", "ngram", str(text), "--order", str(order), "--json"]
    start = time.perf_counter()
    child = subprocess.Popen(argv + (["--bytes"] if as_bytes else []), stdout=subprocess.PIPE, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak memory
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"charrnn ngram failed on {text} at order {order}")
    return {**json.loads(out), "wall_s": wall, "peak_mb": usage.ru_maxrss / 1024}


def processor() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it (the machine's architecture elsewhere)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", default="1,3,5,10,20")
    parser.add_argument("--texts", default="anna,shakespeare")
    parser.add_argument("--bytes", action="store_true", help="also at byte level")
    args = parser.parse_args()
    print(f"processor: {processor()}")
    print("| text | symbol | order | valid nats | valid bits | fit + score s | wall s | peak MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.texts.split(","):
        for as_bytes in (False, True) if args.bytes else (False,):
            for order in map(int, args.orders.split(",")):
                r = run(TEXTS[name], order, as_bytes)
                print(f"| {name} | {r['symbol']} | {order} | {r['valid']['loss']:.4f} | {r['valid']['bpc']:.4f} "
                      f"| {r['seconds']:.1f} | {r['wall_s']:.1f} | {r['peak_mb']:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
