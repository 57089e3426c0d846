"""Training speed under torchrun on this CPU: one process with 2 threads against 2 processes with 1
thread each (gloo), at one global batch, for the notebook's 2x512 (batches of 100x100) and the default
model (1x512, 32x50); and the share of a DDP step that its gradient all-reduce takes (timed alone on a
flat tensor of the model's size, 2 processes).

    python benchmarks/bench_ddp.py [--steps 40]

chars/s is the median of metrics.csv's per-step figure after the first 10 steps (rank 0 reports the
whole world's characters).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import CORPORA, print_table, save_results

CONFIGS = {
    "2x512 notebook": [
        "--hidden",
        "512",
        "--layers",
        "2",
        "--batch-size",
        "100",
        "--seq-len",
        "100",
        "--dropout",
        "0.5",
    ],
    "1x512 default": [],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chars_per_s(run: Path) -> float:
    from charrnn.runs.metrics import read_metrics

    rows = read_metrics(run / "metrics.csv")[10:]
    return statistics.median(float(r["chars_per_s"]) for r in rows)


def train(flags: list[str], out: Path, steps: int, processes: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(2 // processes)}
    args = ["-m", "charrnn", "train", str(CORPORA["anna"]), "--out", str(out), "--device", "cpu", "--max-steps",
            str(steps), "--eval-every", str(10**6), "--save-every", str(10**6), *flags]  # fmt: skip
    if processes > 1:
        launch = ["-m", "torch.distributed.run", "--nproc-per-node", str(processes), "--master-addr", "127.0.0.1",
                  "--master-port", str(free_port())]  # fmt: skip
        args = [*launch, *args]
    subprocess.run([sys.executable, *args], check=True, capture_output=True, env=env)
    return chars_per_s(out)


def probe_all_reduce(elements: int) -> None:
    """Run under torchrun: the median seconds of one all-reduce of `elements` floats (printed by rank 0)."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    tensor = torch.ones(elements)
    times = []
    for _ in range(25):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(tensor)
        times.append(time.perf_counter() - start)
    if dist.get_rank() == 0:
        print(statistics.median(times[5:]))
    dist.destroy_process_group()


def all_reduce_seconds(elements: int) -> float:
    argv = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
            "--master-port", str(free_port()), __file__, "--probe", str(elements)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, check=True, capture_output=True, text=True, env=env)
    return float(done.stdout.strip().splitlines()[-1])


def parameters(flags: list[str]) -> int:
    import charrnn
    from charrnn.model.network import CharRNN, count_parameters

    values = dict(zip(flags[::2], flags[1::2], strict=True))
    config = charrnn.ModelConfig(hidden=int(values.get("--hidden", 512)), layers=int(values.get("--layers", 1)))
    return count_parameters(CharRNN(config.for_vocab(83)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--probe", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe_all_reduce(args.probe)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="charrnn-ddp-") as work:
        for name, flags in CONFIGS.items():
            steps = args.steps if "notebook" in name else args.steps * 5
            one = train(flags, Path(work) / f"{len(rows)}-one", steps, 1)
            two = train(flags, Path(work) / f"{len(rows)}-two", steps, 2)
            params = parameters(flags)
            reduce_s = all_reduce_seconds(params)
            batch = 100 * 100 if "notebook" in name else 32 * 50
            step_s = batch / two
            rows.append({"config": name, "params": params, "one_process": one, "two_processes": two,
                         "ratio": two / one, "all_reduce_s": reduce_s, "all_reduce_share": reduce_s / step_s})  # fmt: skip
            print(rows[-1], flush=True)
    print_table(
        ["config", "parameters", "1 process x 2 threads chars/s", "2 processes x 1 thread chars/s", "ratio",
         "all-reduce ms", "share of a DDP step"],
        [[r["config"], f"{r['params']:,}", f"{r['one_process']:,.0f}", f"{r['two_processes']:,.0f}",
          f"{r['ratio']:.2f}", f"{r['all_reduce_s'] * 1e3:.2f}", f"{r['all_reduce_share']:.1%}"] for r in rows],
        title="torchrun on this CPU (gloo), one global batch",
    )  # fmt: skip
    save_results("ddp", {"rows": rows})


if __name__ == "__main__":
    main()
