"""`charrnn sweep` / `charrnn.sweep`: train every variant of a grid (or a random draw from it) with the
same budget, keep each as a run under OUT/runs/, and name the best.

With one worker each variant trains for the time budget. With K workers at once on a shared CPU a
time budget would rank variants by how busy the machine was, so each variant's training step is
first timed alone (rounds interleaved) and each then trains for the steps it would fit into the
budget. The plan (variants and their steps) is saved in OUT/sweep.json: the same command again skips
finished variants, resumes interrupted ones from their newest checkpoint, and starts the rest.
With `--split TRAIN,VAL,TEST` every variant trains with that split (`data/splits.py`): no variant
trains or validates on the test part, and only the chosen run (and ensemble) is scored there.
"""

from __future__ import annotations

import concurrent.futures as futures
import itertools
import json
import multiprocessing
import os
import random
import statistics
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from ..data.dataset import prepare_data, run_part
from ..data.splits import Split
from ..errors import CharRNNError
from ..generate.evaluation import evaluate
from ..model.ensemble import load_ensemble
from ..model.network import ModelConfig
from ..runs.files import atomic_write_json, read_json
from ..runs.listing import FINISHED, RunRow, find_runs
from ..runs.rundir import RunDir, load_model
from .config import TrainConfig
from .runner import resume, train
from .steptime import scratch_trainer, timed_steps

UNSWEPT = {"texts", "out", "init_from", "tensorboard", "device", "encoding", "errors", "vocab_size"}
PLAN_FILE = "sweep.json"


def parse_set(text: str) -> tuple[str, tuple]:
    """'hidden=512,768' -> ('hidden', (512, 768)): one flag (its CLI or field name), its values typed."""
    name, sep, values = text.partition("=")
    name = name.strip().lstrip("-").replace("-", "_")
    kinds = {f.name: f.type for f in (*fields(TrainConfig), *fields(ModelConfig))}
    if not sep or not values.strip():
        raise CharRNNError(f"--set {text!r}: give a flag and its values, e.g. --set hidden=512,768")
    if name not in kinds or name in UNSWEPT or name == "model":
        raise CharRNNError(f"--set {text!r}: {name!r} is not a training flag a sweep can vary")
    return name, tuple(_typed(name, kinds[name], v.strip()) for v in values.split(","))


def _typed(name: str, kind: str, value: str):
    if value.lower() == "none" and "None" in kind:
        return None
    base = kind.replace(" | None", "")
    try:
        if base == "bool":
            if value.lower() not in ("true", "false"):
                raise ValueError(value)
            return value.lower() == "true"
        return {"int": int, "float": float}.get(base, str)(value)
    except ValueError:
        raise CharRNNError(f"--set {name}: {value!r} is not a valid {base}") from None


@dataclass(frozen=True)
class SweepConfig:
    texts: tuple[str, ...]
    out: str
    budget: float  # seconds of training per variant (or the steps that fit in it, with workers > 1)
    sets: tuple[tuple[str, tuple], ...]  # (flag, values), in the order given
    trials: int | None = None  # with `random`: how many variants to draw from the grid
    random: bool = False
    seed: int = 1  # of the random draw
    workers: int = 1
    ensemble: int = 0  # also average the best K
    split: str | None = None  # every variant's --split; the choice is then scored on its test part
    base: dict = field(default_factory=dict)  # flags every variant shares

    def __post_init__(self):
        if self.budget <= 0 or self.workers <= 0 or self.ensemble < 0:
            raise CharRNNError("--budget and --workers must be positive, --ensemble not negative")
        if self.split is not None:
            Split.parse(self.split)
        if self.trials is not None and (not self.random or self.trials <= 0):
            raise CharRNNError("--trials N draws N variants at random: give it with --random, N positive")
        if not self.sets:
            raise CharRNNError("give at least one --set flag=value,value")


@dataclass(frozen=True)
class SweepResult:
    rows: list[RunRow]  # best validation first
    best: Path
    ensemble_val: float | None = None
    test: dict = field(default_factory=dict)  # "best", "ensemble": loss on the test part, in nats/symbol


def variants(config: SweepConfig) -> list[dict]:
    """Each variant's flags: the grid, or `trials` of it drawn with `seed`."""
    names = [name for name, _ in config.sets]
    grid = [dict(zip(names, values, strict=True)) for values in itertools.product(*(v for _, v in config.sets))]
    if config.random:
        grid = random.Random(config.seed).sample(grid, min(config.trials or len(grid), len(grid)))
    return grid


def variant_name(flags: dict) -> str:
    return "_".join(f"{k}-{v}" for k, v in flags.items()).replace("/", "-")


def variant_config(config: SweepConfig, texts: tuple[str, ...], flags: dict, steps: int | None) -> TrainConfig:
    stop = {"max_steps": steps} if steps else {"time_budget": config.budget}
    out = Path(config.out) / "runs" / variant_name(flags)
    split = {"split": config.split} if config.split else {}
    return TrainConfig(texts=texts, out=str(out), **stop, **split).with_flags({**config.base, **flags})


def step_seconds(configs: list[TrainConfig], rounds: int = 3, steps: int = 5) -> list[float]:
    """Median seconds of one real training step of each config on this machine, rounds interleaved,
    with no run directory written."""
    trainers = [scratch_trainer(config, prepare_data(config)) for config in configs]
    times: list[list[float]] = [[] for _ in trainers]
    for _ in range(rounds):
        for index, trainer in enumerate(trainers):
            times[index].append(statistics.fmean(timed_steps(trainer, steps)))
    return [statistics.median(t) for t in times]


def _plan(config: SweepConfig, texts: tuple[str, ...]) -> list[dict]:
    """The saved plan, or a new one (timing steps when workers share the machine)."""
    path = Path(config.out) / PLAN_FILE
    described = {k: v for k, v in asdict(config).items() if k not in ("workers", "ensemble", "out")}
    described = json.loads(json.dumps(described))
    if path.exists():
        saved = read_json(path, "sweep plan")
        if saved.get("config") != described:
            raise CharRNNError(f"{config.out} holds another sweep ({PLAN_FILE} differs); choose another --out")
        return saved["variants"]
    planned = [{"name": variant_name(f), "flags": f, "steps": None} for f in variants(config)]
    if config.workers > 1:
        seconds = step_seconds([variant_config(config, texts, v["flags"], None) for v in planned])
        for variant, step_s in zip(planned, seconds, strict=True):
            variant["steps"] = max(1, int(config.budget / step_s))
    Path(config.out).mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"config": described, "variants": planned})
    return planned


def _train_variant(config: TrainConfig, threads: int | None) -> str:
    """Trains, resumes or skips one variant (in a worker process or this one); returns how it ended."""
    if threads:
        torch.set_num_threads(threads)
    run = RunDir(config.out)
    checkpoints = run.checkpoints()
    if checkpoints and checkpoints[-1].meta.get("stopped_by") in FINISHED:
        return "done before"
    quiet = open(os.devnull, "w")
    result = resume(run.path, stream=quiet) if checkpoints else train(config, stream=quiet)
    return result.stopped_by


def sweep(config: SweepConfig, report=print) -> SweepResult:
    for flags in variants(config):  # every variant's flags are checked before anything is written
        variant_config(config, tuple(config.texts), flags, None)
    texts = tuple(str(Path(t).resolve()) for t in config.texts)
    planned = _plan(config, texts)
    configs = [variant_config(config, texts, v["flags"], v["steps"]) for v in planned]
    for index, (variant, how) in enumerate(_run_all(configs, config.workers), 1):
        report(f"[{index}/{len(configs)}] {Path(variant.out).name}: {how}")
        if how in ("SIGINT", "SIGTERM"):
            raise KeyboardInterrupt
    rows = find_runs(Path(config.out) / "runs")
    best = Path(config.out) / "runs" / rows[0].name
    result = SweepResult(rows, best)
    members = [Path(config.out) / "runs" / row.name for row in rows[: config.ensemble] if row.best_val_loss]
    ensemble = load_ensemble(members)[0] if len(members) > 1 else None
    if ensemble is not None:
        result = replace(result, ensemble_val=evaluate(ensemble, run_part(best)).loss)
    if config.split is not None and len(ids := run_part(best, "test")) > 1:
        test = {"best": evaluate(load_model(best)[0], ids).loss}
        if ensemble is not None:
            test["ensemble"] = evaluate(ensemble, ids).loss
        result = replace(result, test=test)
    return result


def _run_all(configs: list[TrainConfig], workers: int):
    """(config, how it ended) as each variant ends; one process per variant beside this one's when
    workers > 1, each with its share of the cores."""
    if workers == 1:
        for config in configs:
            yield config, _train_variant(config, None)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    with futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = {pool.submit(_train_variant, c, threads): c for c in configs}
        for done in futures.as_completed(pending):
            yield pending[done], done.result()
