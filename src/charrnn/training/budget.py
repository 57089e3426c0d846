"""Budget-aware defaults: what `charrnn train TEXT --time-budget B` trains when no flag shapes the model.

The best setting for a budget depends on how many passes over the text the budget buys: a wide,
regularised model wins once it can see the text several times, and loses to the smaller default when
it cannot. That count depends on the text's size and on this machine's speed, so a short probe times
each candidate's real training step here, and `rule` picks the largest candidate that the budget
lets run at least its fitted number of epochs (docs/experiments.md, section 11). The probe spends at
most `PROBE_SHARE` of the budget, which counts against the budget, and runs inside `fork_rng`, so the
run's generators are where a run without a probe would find them.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import asdict, dataclass, replace

import torch

from ..data.dataset import Data, prepare_data
from ..errors import CharRNNError, flag_name, setting
from ..model import devices
from ..model.network import MODEL_FLAGS, REGULARISERS, ModelConfig, parameters_of
from .config import TrainConfig
from .distributed import SINGLE, World
from .steptime import median_step, scratch_trainer

# The flags that shape the model or its optimisation: any of them given turns the choice off.
SHAPING_FLAGS = (
    "cell",
    "layers",
    "hidden",
    "embed_dim",
    *REGULARISERS,
    "ema",
    "ar",
    "tar",
    "batch_size",
    "seq_len",
    "lr",
)
PROBE_SHARE = 0.03
MIN_BUDGET = 60.0  # seconds; under a minute a probe would cost more than its share, and the defaults stay
PROBE_STEPS = 5  # timed, after the warm-up steps


@dataclass(frozen=True)
class Setting:
    name: str
    flags: dict  # shaping flags away from the defaults
    min_epochs: float  # the fewest passes over the training text at which it beat the settings after it


# Largest first; the three last are the defaults' 1x512 with AWD-LSTM's AR and TAR: with averaged weights once the
# run is long enough for the average not to lag, and locked dropout too where the text is read often enough to
# overfit (docs/experiments.md, sections 11 and 14).
SETTINGS = (
    Setting("regularised-768", {"hidden": 768, "dropout": 0.2, "weight_drop": 0.3, "ema": 0.999, "lr": 2e-3}, 14.0),
    Setting("wide-896", {"hidden": 896, "dropout": 0.3, "ema": 0.999}, 3.7),
    Setting("locked-512", {"locked_dropout": True, "ar": 2.0, "tar": 1.0, "ema": 0.999}, 6.5),
    Setting("artar-ema-512", {"ar": 2.0, "tar": 1.0, "ema": 0.999}, 3.5),
    Setting("artar-512", {"ar": 2.0, "tar": 1.0}, 0.0),
)


@dataclass(frozen=True)
class Choice:
    setting: str
    budget: float  # seconds the user gave, the probe's included (the run's clock starts at the probe)
    probe_seconds: float
    step_seconds: dict[str, float]  # per probed setting
    epochs: dict[str, float]  # passes over the training text each probed setting would make in the budget
    train_chars: int
    reason: str
    command: str  # the explicit command that trains the same

    def to_json(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        return f"budget: chose {self.setting}: {self.reason}; same as: {self.command}"


def applies(config: TrainConfig, world: World = SINGLE) -> bool:
    """Whether the budget may choose: a time budget of a minute or more alone ends a new run, in one process,
    not fine-tuned (whose architecture is the source run's)."""
    alone = config.max_steps is None and config.epochs is None
    budget = config.time_budget or 0.0
    return budget >= MIN_BUDGET and alone and not config.init_from and not world.distributed


def rule(
    step_seconds: dict[str, float], budget: float, train_chars: int, settings: tuple[Setting, ...] = SETTINGS
) -> tuple[Setting, dict[str, float]]:
    """The first (largest) of `settings` whose epochs in `budget` reach its `min_epochs`, given each probed
    setting's seconds per step; settings missing from `step_seconds` (not probed) are passed over."""
    epochs = {}
    for candidate in settings:
        if candidate.name in step_seconds:
            chars_per_step = _flag(candidate, "batch_size") * _flag(candidate, "seq_len")
            epochs[candidate.name] = budget / step_seconds[candidate.name] * chars_per_step / max(1, train_chars)
    for candidate in settings:
        if candidate.name in epochs and epochs[candidate.name] >= candidate.min_epochs:
            return candidate, epochs
    return settings[-1], epochs


def probe(config: TrainConfig, data: Data, limit: float) -> dict[str, float]:
    """Seconds per training step of each setting, the smallest first and then up the list, until the next
    would likely take the probe past `limit` seconds (its cost guessed from the last one's, scaled by
    their parameters: a step's work grows with them)."""
    device = devices.select_device(config.device)
    forked = [device.index or 0] if device.type == "cuda" else []
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    last_cost, last_params = 0.0, 1
    with torch.random.fork_rng(devices=forked):
        for candidate in reversed(SETTINGS):
            began = time.perf_counter()
            candidate_config = config.with_flags(candidate.flags)
            params = parameters_of(candidate_config.model.for_vocab(len(data.vocab)))
            if seconds and began - start + last_cost * params / last_params > limit:
                break
            trainer = scratch_trainer(candidate_config, data)
            seconds[candidate.name] = median_step(trainer, PROBE_STEPS)
            del trainer
            last_cost, last_params = time.perf_counter() - began, params
    return seconds


def choose(config: TrainConfig, data: Data) -> tuple[TrainConfig, Choice]:
    """`config` with the setting chosen for what its time budget leaves after the probe, and the choice."""
    built = replace(config, model=config.model.for_vocab(len(data.vocab)))
    fixed = _fixed_defaults(built)
    shaped = [name for name in SHAPING_FLAGS if _value(built, name) != _value(fixed, name)]
    if shaped:
        raise CharRNNError(f"{setting(shaped[0])} is given: the budget chooses the model only when no flag shapes it")
    budget = config.time_budget
    start = time.perf_counter()
    seconds = probe(config, data, PROBE_SHARE * budget)
    spent = time.perf_counter() - start
    chosen, epochs = rule(seconds, budget - spent, len(data.train_ids))
    return config.with_flags(chosen.flags), Choice(
        setting=chosen.name,
        budget=budget,
        probe_seconds=round(spent, 3),
        step_seconds={k: round(v, 5) for k, v in seconds.items()},
        epochs={k: round(v, 2) for k, v in epochs.items()},
        train_chars=len(data.train_ids),
        reason=_reason(chosen, epochs, spent),
        command=_command(built, chosen.flags),
    )


def choose_config(texts, time_budget: float, **settings) -> TrainConfig:
    """The `TrainConfig` that `charrnn train TEXTS --time-budget B` would train here (probing this machine);
    `settings` are any other flags, none of which may shape the model (`seed`, `val_fraction`, `device`, ...)."""
    config = TrainConfig(texts=tuple(str(t) for t in texts), time_budget=time_budget, **settings)
    config, _ = choose(config, prepare_data(config))
    return config


def _fixed_defaults(config: TrainConfig) -> TrainConfig:
    """The fixed defaults for `config`'s texts and vocabulary (embed_dim follows the vocabulary's size)."""
    return TrainConfig(texts=config.texts, model=ModelConfig().for_vocab(config.model.vocab_size))


def _flag(candidate: Setting, name: str):
    return candidate.flags.get(name, _value(TrainConfig(), name))


def _value(config: TrainConfig, name: str):
    return getattr(config.model, name) if name in MODEL_FLAGS else getattr(config, name)


def _reason(chosen: Setting, epochs: dict[str, float], spent: float) -> str:
    passes = ", ".join(f"{name} {count:.1f}" for name, count in epochs.items())
    why = (
        f"it fits {epochs[chosen.name]:.1f} epochs, at least its {chosen.min_epochs:g}"
        if chosen.min_epochs
        else "no larger setting fits enough epochs"
    )
    return f"{why} (epochs in the budget: {passes}; probe {spent:.1f} s)"


def _command(config: TrainConfig, flags: dict) -> str:
    """The explicit command that trains what was chosen: the run's own flags, then the chosen ones."""
    words = ["charrnn", "train", *config.texts]
    fixed = _fixed_defaults(config).flat()
    given = {k: v for k, v in config.flat().items() if k not in ("texts", "vocab_size") and v != fixed.get(k)}
    for name, value in {**given, "time_budget": config.time_budget, **flags}.items():
        words += _words(name, value)
    return shlex.join(words)


def _words(name: str, value) -> list[str]:
    flag = {"val_texts": "--val-text", "teachers": "--teacher"}.get(name) or flag_name(name)
    if value is None or value is False:
        return []
    if value is True:
        return [flag]
    if name == "teachers":
        return [word for teacher in value for word in (flag, str(teacher))]
    if isinstance(value, list | tuple):
        return [flag, *map(str, value)]
    if name == "time_budget":
        return [flag, f"{value / 60:g}m" if value % 60 == 0 else f"{value:g}"]
    if name == "keep" and value == 0:
        return [flag, "all"]
    return [flag, f"{value:g}" if isinstance(value, float) else str(value)]
