"""Time to quality: validation loss (nats/char, the contiguous last 10% of the text) after fixed
wall-clock budgets, for named configurations, through the real `charrnn.train` loop.

    python benchmarks/bench_quality.py                       # default config, anna.txt, 1/5/10 minutes
    python benchmarks/bench_quality.py --long                # adds 30 and 60 minutes
    python benchmarks/bench_quality.py --configs default,notebook --corpus shakespeare --budgets 5
    python benchmarks/bench_quality.py --configs default --set batch_size=16 --set lr=3e-3 --budgets 5

`--steps N` gives every run N steps instead of a time budget: the fair way to compare settings that
do not change a step's cost (learning rate, schedule, averaging) on a machine whose speed drifts.

`--dynamic-lr LR` also scores each run's best checkpoint on the same validation text read as one stream,
first without learning (the control) and then with dynamic evaluation (`charrnn eval --dynamic-lr`),
after the budget and outside it. Those columns are a different measure from the validation loss.

Each budget is its own run (the learning-rate schedule spans the whole budget). Prints a table and
writes benchmarks/results/quality-*.json with every run's validation curve.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import charrnn
from charrnn.data.dataset import prepare_data
from charrnn.runs.metrics import read_metrics

from common import CORPORA, print_table, save_results

CONFIGS = {
    "default": {},
    # The notebook: 2x512, one-hot-sized input, batch 100x100, dropout 0.5, Adam 1e-3 constant, clip 5.
    "notebook": dict(
        model=dict(hidden=512, layers=2, embed_dim=83, dropout=0.5),
        batch_size=100,
        seq_len=100,
        lr=1e-3,
        lr_schedule="constant",
        warmup_steps=0,
        grad_clip=5.0,
        eval_every=200,
        save_every=200,
    ),
}


def parse_overrides(text: str) -> dict:
    """'hidden=384,batch_size=16,shift_epochs=true' -> {'model': {'hidden': 384}, 'batch_size': 16, ...}."""
    model_fields = set(charrnn.ModelConfig.__dataclass_fields__)
    overrides: dict = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=", 1)
        numeric = value.replace(".", "", 1).replace("e-", "", 1).isdigit()
        parsed = json.loads(value) if numeric or value in ("true", "false") else value
        if key in model_fields:
            overrides.setdefault("model", {})[key] = parsed
        else:
            overrides[key] = parsed
    return overrides


def make_config(
    name: str, text: Path, out: Path, budget_s: float, overrides: dict, steps: int | None = None
) -> charrnn.TrainConfig:
    spec = {**CONFIGS[name], **{k: v for k, v in overrides.items() if k != "model"}}
    model = replace(charrnn.ModelConfig(), **{**CONFIGS[name].get("model", {}), **overrides.get("model", {})})
    spec.pop("model", None)
    stop = {"max_steps": steps} if steps else {"time_budget": budget_s}
    return charrnn.TrainConfig(texts=(str(text),), out=str(out), model=model, **stop, **spec)


def run_one(config: charrnn.TrainConfig) -> dict:
    start = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        result = charrnn.train(config, stream=quiet, keep_freed_memory=True)  # as the CLI does
    wall = time.perf_counter() - start
    rows = read_metrics(Path(config.out) / "metrics.csv")
    curve = [(float(r["elapsed_s"]), float(r["val_loss"])) for r in rows if r["val_loss"]]
    best = min((float(r["val_loss"]), int(r["step"]), float(r["epoch"])) for r in rows if r["val_loss"])
    chars = result.step * config.batch_size * config.seq_len
    return {
        "steps": result.step,
        "wall_s": wall,
        "train_chars_per_s": chars / wall,
        "epochs": float(rows[-1]["epoch"]),
        "val_loss": result.val_loss,
        "val_bpc": result.val_loss / 0.6931471805599453,
        "best_val_loss": best[0],
        "best_step": best[1],
        "best_epoch": best[2],
        "curve": curve,
        "config": config.flat(),
    }


def score_dynamic(config: charrnn.TrainConfig, lr: float) -> dict:
    """The best checkpoint on the validation text as one stream: without learning, then learning as it reads."""
    sampler = charrnn.load(config.out, "best")
    val_ids = prepare_data(config, sampler.vocab).val_ids
    one_stream = charrnn.evaluate_dynamic(sampler.model, val_ids, lr=0.0).loss
    start = time.perf_counter()
    dynamic = charrnn.evaluate_dynamic(sampler.model, val_ids, lr=lr).loss
    return {
        "one_stream_loss": one_stream,
        "dynamic_loss": dynamic,
        "dynamic_lr": lr,
        "dynamic_s": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="anna", help="anna, shakespeare or a path")
    parser.add_argument("--configs", default="default", help=f"comma-separated: {', '.join(CONFIGS)}")
    parser.add_argument("--budgets", default="1,5,10", help="minutes, comma-separated")
    parser.add_argument("--long", action="store_true", help="also 30 and 60 minutes")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FLAG=VALUE",
        help="one flag changed for every config, as charrnn sweep's --set (repeat), e.g. --set hidden=384",
    )
    parser.add_argument("--steps", type=int, help="stop each run after this many steps instead of a time budget")
    parser.add_argument("--label", default="", help="a name for this variant in the table")
    parser.add_argument("--dynamic-lr", type=float, help="also score each run with dynamic evaluation at this lr")
    args = parser.parse_args()

    text = Path(CORPORA.get(args.corpus, args.corpus))
    budgets = [float(b) for b in args.budgets.split(",")] + ([30.0, 60.0] if args.long else [])
    budgets = [0.0] if args.steps else budgets
    overrides = parse_overrides(",".join(args.set))
    records = []
    workdir = Path(tempfile.mkdtemp(prefix="charrnn-quality-"))
    try:
        for name in args.configs.split(","):
            for minutes in budgets:
                out = workdir / f"{name}-{minutes:g}m"
                config = make_config(name, text, out, minutes * 60, overrides, args.steps)
                record = run_one(config)
                if args.dynamic_lr is not None:
                    record.update(score_dynamic(config, args.dynamic_lr))
                record.update(
                    config_name=name + (f"+{args.label or ','.join(args.set)}" if args.set else ""), budget_min=minutes
                )
                records.append(record)
                budget = f"{args.steps} steps" if args.steps else f"{minutes:g} min"
                print(
                    f"{record['config_name']:>24} {budget:>10}: val {record['val_loss']:.4f} nats "
                    f"({record['val_bpc']:.3f} bpc), {record['steps']} steps, {record['train_chars_per_s']:,.0f} chars/s"
                    + dynamic_summary(record),
                    flush=True,
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    dynamic = ["one stream", "dynamic"] if args.dynamic_lr is not None else []
    print_table(
        ["config", "budget (min)", "steps", "epochs", "chars/s", "val nats/char", "val bpc", *dynamic],
        [
            [
                r["config_name"],
                f"{r['budget_min']:g}",
                r["steps"],
                f"{r['epochs']:.2f}",
                f"{r['train_chars_per_s']:,.0f}",
                f"{r['val_loss']:.4f}",
                f"{r['val_bpc']:.4f}",
                *([f"{r['one_stream_loss']:.4f}", f"{r['dynamic_loss']:.4f}"] if dynamic else []),
            ]
            for r in records
        ],
        title=f"Time to quality on {text.name} (validation: last 10%, contiguous)",
    )
    save_results("quality", {"corpus": str(text), "runs": records})


def dynamic_summary(record: dict) -> str:
    if "dynamic_loss" not in record:
        return ""
    return (
        f"; best checkpoint as one stream {record['one_stream_loss']:.4f}, dynamic evaluation at lr "
        f"{record['dynamic_lr']:g} {record['dynamic_loss']:.4f} ({record['dynamic_s']:.0f} s)"
    )


if __name__ == "__main__":
    main()
