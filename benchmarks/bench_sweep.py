"""Time to quality at this CPU's cost, run anywhere: compare settings by the validation loss each
reaches in the number of steps it could take here within a budget.

A 5-minute race on this 2-core machine tests one setting per 5 minutes, and its speed drifts by up
to 20%. A step's arithmetic does not depend on where it runs, so the race splits in two:

    plan  (here)  time every variant's real training step on this CPU, interleaved with the base's,
                  and give each the steps it would fit into the budget: base_steps * t_base / t_variant
    run   (any machine) train every variant for its steps (`charrnn.train`, max_steps), several at
                  once, on a GPU or on many cores, and print the validation losses

    python benchmarks/bench_sweep.py plan benchmarks/sweeps/anna.txt --base-steps 4597 -o plan.json
    python benchmarks/bench_sweep.py run plan.json --device cuda --workers 6 [--cpu-workers 4] [-o results.json]

A variant file holds one variant a line, `name: flag=value,flag=value` (several flags, one value
each; `steps_scale=2` doubles its budget, `device=cpu` keeps it on the CPU, as bf16 runs must be to
learn as they would here, `train_fraction=0.25` trains on the first quarter of the training text and
validates on the same text as the others), and may hold a base, `*: flags`, under every variant's own
flags (else the base is charrnn's defaults); `--base-steps` is the base's steps in the budget here. On
a GPU, TF32 is turned off so that fp32 means fp32. What a plan predicts is checked the only honest way:
a real timed run here (`bench_quality.py --set ...`).
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import json
import multiprocessing
import shutil
import tempfile
import time
from pathlib import Path

import torch

import charrnn
from bench_quality import make_config, parse_overrides, run_one
from charrnn.data.corpus import read_text, train_val_split
from charrnn.training import allocator
from charrnn.training.sweeps import step_seconds as sweep_step_seconds

from common import CORPORA, machine, print_table


def read_variants(path: Path) -> tuple[str, list[tuple[str, str]]]:
    """The base flags (a `*:` line, under every variant's own) and (name, flags) pairs, base included;
    blank lines and # comments are skipped. A base keeps a file's meaning when charrnn's defaults change."""
    base, variants = "", []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, overrides = line.partition(":")
            if name.strip() == "*":
                base = overrides.strip()
            else:
                variants.append((name.strip(), overrides.strip()))
    return base, [(name, ",".join(filter(None, (base, own)))) for name, own in variants]


def split_overrides(text: str) -> tuple[dict, float]:
    """bench_quality overrides without this script's own keys (`steps_scale`, `train_fraction`), and the scale."""
    overrides = parse_overrides(text)
    overrides.pop("train_fraction", None)
    return overrides, float(overrides.pop("steps_scale", 1))


def train_prefix_text(text: Path, fraction: float, val_fraction: float, out: Path) -> float:
    """Write to `out` the first `fraction` of `text`'s training part followed by its whole validation
    part; return the --val-fraction that splits `out` at the same validation text. How the loss falls
    with more text, all else equal, tells a data-limited setting from a compute-limited one."""
    train, val = train_val_split(read_text(text), val_fraction)
    prefix = train[: round(len(train) * fraction)]
    out.write_text(prefix + val, encoding="utf-8", newline="")
    return len(val) / (len(prefix) + len(val))


# weight_drop draws a mask over the recurrent weights and ema updates a second copy of them every step.
COST_FIELDS = ("cell", "hidden", "layers", "embed_dim", "batch_size", "seq_len", "precision", "weight_drop", "ema")


def cost_key(spec: str) -> tuple:
    """What decides a step's cost; variants that differ only elsewhere (lr, dropout...) share one timing."""
    overrides, _ = split_overrides(spec)
    flat = {**overrides.get("model", {}), **overrides}
    return tuple(flat.get(name) for name in COST_FIELDS)


def step_seconds(specs: list[str], text: Path, rounds: int, steps: int, workdir: Path) -> dict:
    """Median seconds of one real training step per cost key on this machine, rounds interleaved
    (`charrnn sweep`'s own timing)."""
    keys, configs = [], []
    for spec in specs:
        if cost_key(spec) not in keys:
            overrides, _ = split_overrides(spec)
            keys.append(cost_key(spec))
            out = workdir / str(len(keys))
            configs.append(make_config("default", text, out, 0, {**overrides, "device": "cpu"}, steps=10**9))
    allocator.keep_freed_memory()  # as the CLI sets it
    return dict(zip(keys, sweep_step_seconds(configs, rounds, steps), strict=True))


def plan(args: argparse.Namespace) -> None:
    base_spec, variants = read_variants(args.variants)
    workdir = Path(tempfile.mkdtemp(prefix="charrnn-sweep-"))
    try:
        text = Path(CORPORA.get(args.corpus, args.corpus))
        specs = [base_spec, *(spec for _, spec in variants)]
        seconds = step_seconds(specs, text, args.rounds, args.steps, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    base = seconds[cost_key(base_spec)]
    jobs = []
    for name, spec in variants:
        _, scale = split_overrides(spec)
        step_s = seconds[cost_key(spec)]
        jobs.append(
            {"name": name, "set": spec, "step_s_here": step_s, "steps": round(args.base_steps * scale * base / step_s)}
        )
    print_table(
        ["variant", "flags", "step here (ms)", "vs base", "steps"],
        [[j["name"], j["set"], f"{j['step_s_here'] * 1e3:.1f}", f"{base / j['step_s_here']:.2f}x",
          j["steps"]] for j in jobs],
        title=f"Steps each variant fits in the base's {args.base_steps} (this CPU, medians of {args.rounds} rounds)",
    )  # fmt: skip
    payload = {
        "machine": machine(),
        "corpus": args.corpus,
        "base": base_spec,
        "base_steps": args.base_steps,
        "jobs": jobs,
    }
    args.output.write_text(json.dumps(payload, indent=1))
    print(f"\nwrote {args.output}")


def train_job(job: dict, corpus: str, device: str, threads: int, keep_runs: Path | None = None) -> dict:
    """One variant for its planned steps, in a worker process of its own; its run directory is deleted
    afterwards unless `keep_runs` is given, where it is kept as `keep_runs/<variant name>`."""
    torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    overrides, _ = split_overrides(job["set"])
    overrides.setdefault("device", device)
    workdir = Path(tempfile.mkdtemp(prefix="charrnn-sweep-"))
    try:
        text = Path(CORPORA.get(corpus, corpus))
        fraction = parse_overrides(job["set"]).get("train_fraction")
        if fraction is not None:
            val_fraction = overrides.get("val_fraction", charrnn.TrainConfig.val_fraction)
            overrides["val_fraction"] = train_prefix_text(text, fraction, val_fraction, workdir / text.name)
            text = workdir / text.name
        run_dir = keep_runs / job["name"] if keep_runs else workdir / "run"
        record = run_one(make_config("default", text, run_dir, 0, overrides, steps=job["steps"]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {**job, **record, "device": overrides["device"]}


def run(args: argparse.Namespace) -> None:
    planned = json.loads(args.plan.read_text())
    jobs = [j for j in planned["jobs"] if not args.only or j["name"] in args.only.split(",")]
    # Variants pinned to the CPU get a pool of their own beside --device's; with --device cpu there is one pool.
    pinned = args.device != "cpu"
    on_cpu = [j for j in jobs if pinned and split_overrides(j["set"])[0].get("device") == "cpu"]
    # Longest first, so that no long variant starts last and holds up the end.
    on_device = sorted((j for j in jobs if j not in on_cpu), key=lambda j: -j["steps"])
    context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    pools = [futures.ProcessPoolExecutor(args.workers, mp_context=context)]
    pools.append(futures.ProcessPoolExecutor(args.cpu_workers, mp_context=context) if on_cpu else pools[0])
    keep = args.keep_runs
    pending = {pools[0].submit(train_job, j, planned["corpus"], args.device, args.threads, keep): j for j in on_device}
    pending |= {pools[1].submit(train_job, j, planned["corpus"], "cpu", args.cpu_threads, keep): j for j in on_cpu}
    results, start = [], time.perf_counter()
    for done in futures.as_completed(pending):
        try:
            record = done.result()
        except Exception as error:  # one failed variant must not lose the others' results
            print(f"{pending[done]['name']} failed: {type(error).__name__}: {error}", flush=True)
            continue
        results.append(record)
        print(f"{time.perf_counter() - start:7.0f}s {record['name']:>24} ({record['device']}): "
              f"{record['steps']} steps, val {record['val_loss']:.4f} nats (best {record['best_val_loss']:.4f} at "
              f"step {record['best_step']})", flush=True)  # fmt: skip
        partial = args.output.with_suffix(".partial")  # renamed into place: a killed run leaves whole JSON
        partial.write_text(json.dumps({"machine": machine(), "plan": planned, "results": results}, indent=1))
        partial.replace(args.output)
    for pool in pools:
        pool.shutdown()
    order = {j["name"]: i for i, j in enumerate(planned["jobs"])}
    results.sort(key=lambda r: order[r["name"]])
    print_table(
        ["variant", "flags", "device", "steps", "epochs", "val nats/char", "val bpc", "best val (step, epoch)"],
        [[r["name"], r["set"], r["device"], r["steps"], f"{r['epochs']:.2f}", f"{r['val_loss']:.4f}",
          f"{r['val_bpc']:.4f}", f"{r['best_val_loss']:.4f} ({r['best_step']}, {r['best_epoch']:.1f})"]
         for r in results],
        title=f"Validation loss after each variant's steps in {planned['base_steps']} base steps of this CPU's time",
    )  # fmt: skip
    print(f"\nwrote {args.output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    planner = commands.add_parser("plan", help="time each variant's step here and give it its steps")
    planner.add_argument("variants", type=Path)
    planner.add_argument("--base-steps", type=int, required=True, help="steps the base takes in the budget here")
    planner.add_argument("--corpus", default="anna")
    planner.add_argument("--rounds", type=int, default=3)
    planner.add_argument("--steps", type=int, default=5, help="steps per round")
    planner.add_argument("-o", "--output", type=Path, default=Path("sweep-plan.json"))
    runner = commands.add_parser("run", help="train every planned variant for its steps")
    runner.add_argument("plan", type=Path)
    runner.add_argument("--device", default="cpu")
    runner.add_argument("--workers", type=int, default=1, help="variants at once on --device")
    runner.add_argument("--threads", type=int, default=2, help="torch threads per --device worker")
    runner.add_argument("--cpu-workers", type=int, default=1, help="variants at once that must run on the CPU")
    runner.add_argument("--cpu-threads", type=int, default=2)
    runner.add_argument("--only", default="", help="comma-separated variant names")
    runner.add_argument(
        "--keep-runs",
        type=Path,
        metavar="DIR",
        help="keep each variant's run directory as DIR/<name> (to sample or ensemble)",
    )
    runner.add_argument("-o", "--output", type=Path, default=Path("sweep-results.json"))
    args = parser.parse_args()
    plan(args) if args.command == "plan" else run(args)


if __name__ == "__main__":
    main()
