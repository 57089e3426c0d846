"""Does averaging models beat one model? K models of one setting, differing only in their seed, trained
side by side for the same steps, then scored on the validation text alone and as an ensemble that
averages their next-character probabilities (`charrnn.Ensemble`; the same `charrnn.evaluate`, the same characters).

    python benchmarks/bench_ensemble.py --models 2 --steps 6200 --set hidden=896 --set dropout=0.3 --set ema=0.999
    python benchmarks/bench_ensemble.py --runs ensemble-runs/*     # score runs trained elsewhere

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
from charrnn.data.dataset import run_part

from common import CORPORA, print_table, save_results


def train_member(config: charrnn.TrainConfig, threads: int) -> dict:
    """One member, in a worker process of its own."""
    torch.set_num_threads(threads)
    return run_one(config)


def train_seeds(args: argparse.Namespace, text: Path, workdir: Path) -> tuple[list[Path], list[dict]]:
    """`--models` runs of one setting, seeds 1, 2, ..., trained side by side: their directories and records."""
    overrides = parse_overrides(",".join(args.set))
    configs = [
        make_config("default", text, workdir / f"seed{seed}", 0, {**overrides, "seed": seed}, steps=args.steps)
        for seed in range(1, args.models + 1)
    ]
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(args.models, mp_context=context) as pool:
        records = list(pool.map(train_member, configs, [args.threads] * len(configs)))
    return [Path(config.out) for config in configs], records


def score(run_dirs: list[Path]) -> dict:
    """Each run's best checkpoint alone, the first k averaged for every k (how the gain grows with each
    model added) and, for three or more, all but one (what each model adds to the others)."""
    samplers = [charrnn.load(run_dir, "best") for run_dir in run_dirs]
    members = [sampler.model for sampler in samplers]
    val_ids = run_part(run_dirs[0])
    if any(sampler.vocab != samplers[0].vocab for sampler in samplers):
        raise SystemExit("the runs' vocabularies differ: train them on one text")

    def loss(models: list) -> float:
        return charrnn.evaluate(models[0] if len(models) == 1 else charrnn.Ensemble(models), val_ids).loss

    count = len(members)
    return {
        "alone": [loss([member]) for member in members],
        "first_k": {k: loss(members[:k]) for k in range(2, count + 1)},
        "all_but": {i: loss(members[:i] + members[i + 1 :]) for i in range(count)} if count > 2 else {},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="anna", help="anna, shakespeare or a path")
    parser.add_argument("--models", type=int, default=2, help="ensemble members, trained side by side")
    parser.add_argument("--steps", type=int, default=0, help="training steps of each member")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FLAG=VALUE",
        help="one flag changed for every member, as charrnn sweep's --set (repeat), e.g. --set hidden=384",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads per member")
    parser.add_argument(
        "--runs",
        nargs="+",
        type=Path,
        help="score these runs (e.g. kept by bench_sweep.py run --keep-runs), no training",
    )
    args = parser.parse_args()
    if not args.runs and (args.models < 1 or args.steps < 1):
        parser.error("give --runs, or positive --models and --steps")

    text = Path(CORPORA.get(args.corpus, args.corpus))
    workdir = Path(tempfile.mkdtemp(prefix="charrnn-ensemble-"))
    try:
        run_dirs, records = (args.runs, [{} for _ in args.runs]) if args.runs else train_seeds(args, text, workdir)
        scores = score(run_dirs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    names = [run_dir.name for run_dir in run_dirs]
    rows = [
        [name, record.get("steps", ""), f"{record['epochs']:.2f}" if record else "", f"{loss:.4f}"]
        for name, record, loss in zip(names, records, scores["alone"], strict=True)
    ]
    rows += [[f"the first {k} averaged", "", "", f"{loss:.4f}"] for k, loss in scores["first_k"].items()]
    rows += [[f"all but {names[i]}", "", "", f"{loss:.4f}"] for i, loss in scores["all_but"].items()]
    print_table(
        ["model", "steps", "epochs", "val nats/char (best checkpoint)"],
        rows,
        title=f"One model against {len(names)} averaged ({','.join(args.set) or ', '.join(map(str, run_dirs))})",
    )
    if scores["first_k"]:
        together, best = scores["first_k"][len(names)], min(scores["alone"])
        print(f"\nall {len(names)}: {together:.4f}; best member {best:.4f}; gain {best - together:.4f}")
    save_results(
        "ensemble", {"runs": list(map(str, run_dirs)), "set": ",".join(args.set), "members": records, **scores}
    )


if __name__ == "__main__":
    main()
