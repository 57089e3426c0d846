"""Does averaging models beat one model? K models of one setting, differing only in their seed, trained
side by side for the same steps, then scored on the validation text alone and as an ensemble that
averages their next-character probabilities (`charrnn.Ensemble`; the same `charrnn.evaluate`, the same characters).

    python benchmarks/bench_ensemble.py --models 2 --steps 6200 --set hidden=896,dropout=0.3,ema=0.999

On a text this small (anna.txt's 1.8 MB of training text) one model stops improving after some epochs
(sweeps/anna-data.txt); an ensemble is the usual way to spend more time past that point. Prints a
table and writes benchmarks/results/ensemble-*.json.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import multiprocessing
import shutil
import tempfile
from pathlib import Path

import torch

import charrnn
from bench_quality import make_config, parse_overrides, run_one
from charrnn.train import prepare_data

from common import CORPORA, print_table, save_results


def train_member(config: charrnn.TrainConfig, threads: int) -> dict:
    """One member, in a worker process of its own."""
    torch.set_num_threads(threads)
    return run_one(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="anna", help="anna, shakespeare or a path")
    parser.add_argument("--models", type=int, default=2, help="ensemble members, trained side by side")
    parser.add_argument("--steps", type=int, required=True, help="training steps of each member")
    parser.add_argument("--set", default="", help="overrides for every member, e.g. hidden=896,dropout=0.3")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per member")
    args = parser.parse_args()
    if args.models < 1 or args.steps < 1:
        parser.error("--models and --steps must be positive")

    text = Path(CORPORA.get(args.corpus, args.corpus))
    overrides = parse_overrides(args.set)
    workdir = Path(tempfile.mkdtemp(prefix="charrnn-ensemble-"))
    try:
        configs = [
            make_config("default", text, workdir / f"seed{seed}", 0, {**overrides, "seed": seed}, steps=args.steps)
            for seed in range(1, args.models + 1)
        ]
        context = multiprocessing.get_context("spawn")
        with futures.ProcessPoolExecutor(args.models, mp_context=context) as pool:
            records = list(pool.map(train_member, configs, [args.threads] * len(configs)))
        samplers = [charrnn.load(config.out, "best") for config in configs]
        members = [sampler.model for sampler in samplers]
        val_ids = prepare_data(configs[0], samplers[0].vocab).val_ids  # one text: every member's vocabulary
        alone = [charrnn.evaluate(member, val_ids).loss for member in members]
        # The first k members for every k: how the gain grows with each model added.
        ensembles = {
            k: charrnn.evaluate(charrnn.Ensemble(members[:k]), val_ids).loss for k in range(2, len(members) + 1)
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    rows = [
        [f"seed {config.seed}", record["steps"], f"{record['epochs']:.2f}", f"{loss:.4f}"]
        for config, record, loss in zip(configs, records, alone, strict=True)
    ]
    rows += [[f"ensemble of the first {k}", "", "", f"{loss:.4f}"] for k, loss in ensembles.items()]
    print_table(
        ["model", "steps", "epochs", "val nats/char (best checkpoint)"],
        rows,
        title=f"One model against {args.models} averaged on {text.name} ({args.set or 'defaults'})",
    )
    if ensembles:
        together = ensembles[len(members)]
        print(f"\nall {len(members)}: {together:.4f}; best member {min(alone):.4f}; gain {min(alone) - together:.4f}")
    save_results(
        "ensemble",
        {"corpus": str(text), "set": args.set, "members": records, "alone": alone, "ensembles": ensembles},
    )


if __name__ == "__main__":
    main()
