"""`TrainConfig`: everything that decides a training run, saved in run.json so it can be reproduced.

The architecture lives in its own `ModelConfig` (nested here), which is all a sampler needs.
Field names are the CLI's flag names with `-` as `_`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from .errors import CharRNNError, setting
from .model import MODEL_FLAGS, ModelConfig

DEFAULT_TIME_BUDGET_S = 300.0
LR_SCHEDULES = ("cosine", "constant")
PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")
# What a resumed run may change: how long it goes on and how it reports, never what it learns;
STOP_FLAGS = frozenset({"max_steps", "epochs", "time_budget"})
# precision too, so that a bf16 run can go on where bf16 cannot run (with a warning: other numbers).
RESUMABLE_CHANGES = frozenset(
    {"max_steps", "epochs", "time_budget", "patience", "eval_every", "save_every", "save_interval", "keep"}
    | {"device", "precision"}
    | {"tensorboard", "dist_backend"}
)


@dataclass(frozen=True)
class TrainConfig:
    texts: tuple[str, ...] = ()
    out: str = "runs/run"
    model: ModelConfig = field(default_factory=ModelConfig)
    batch_size: int = 32
    seq_len: int = 50
    lr: float = 4e-3
    lr_schedule: str = "cosine"
    min_lr_ratio: float = 0.1
    warmup_steps: int = 300  # a shorter warm-up cost more than the run won back (docs/experiments.md)
    grad_clip: float = 5.0
    adam_beta2: float = 0.999
    shift_epochs: bool = False  # start each epoch's streams at a new point in the text (batches.py)
    reset_rate: float = 0.01  # a stream's chance of a zeroed state before each window: primes read cold (batches.py)
    ema: float = 0.0  # decay of the weights' moving average that validation and sampling use; 0: off
    precision: str = "fp32"  # the forward pass's arithmetic: bf16/fp16 autocast keep fp32 weights and Adam
    epochs: int | None = None
    max_steps: int | None = None
    time_budget: float | None = None  # seconds from the first step to the final checkpoint (the probe's included)
    patience: int | None = None  # stop after this many validations in a row without a new best
    init_from: str | None = None  # a run (or checkpoint) whose weights and architecture this run starts from
    tensorboard: str | None = None  # a directory for TensorBoard logs (the run's own subdirectory in it)
    val_fraction: float = 0.1
    val_texts: tuple[str, ...] = ()  # a separate validation text (then all of `texts` trains)
    val_max_chars: int = 5_000_000  # the validation tail's cap: a 1 GB corpus validates on 5 MB, not 100
    eval_every: int = 1000
    save_every: int = 1000
    save_interval: float = 300.0  # seconds of training between checkpoints at most (the first: trainer.py); 0: off
    keep: int = 5  # 0: keep all
    seed: int = 1234
    device: str = "auto"
    dist_backend: str = "auto"  # under torchrun: gloo on the CPU, NCCL on CUDA, unless told
    encoding: str = "utf-8"
    errors: str = "strict"

    def __post_init__(self):
        object.__setattr__(self, "texts", tuple(str(t) for t in self.texts))
        object.__setattr__(self, "val_texts", tuple(str(t) for t in self.val_texts))
        if self.epochs is None and self.max_steps is None and self.time_budget is None:
            object.__setattr__(self, "time_budget", DEFAULT_TIME_BUDGET_S)
        self._validate()

    def _validate(self) -> None:
        positive = ["batch_size", "seq_len", "lr", "eval_every", "save_every", "val_max_chars"]
        optional = ("epochs", "max_steps", "time_budget", "patience")
        positive += [name for name in optional if getattr(self, name) is not None]
        for name in positive:
            if getattr(self, name) <= 0:
                raise CharRNNError(f"{setting(name)} must be positive, got {getattr(self, name)}")
        for name in ("grad_clip", "warmup_steps", "keep", "save_interval"):
            if getattr(self, name) < 0:
                raise CharRNNError(f"{setting(name)} must not be negative, got {getattr(self, name)}")
        for name, top in (
            ("val_fraction", "1)"),
            ("reset_rate", "1)"),
            ("ema", "1)"),
            ("adam_beta2", "1)"),
            ("min_lr_ratio", "1]"),
        ):
            value = getattr(self, name)
            if not (0.0 <= value < 1.0 or (top == "1]" and value == 1.0)):
                raise CharRNNError(f"{setting(name)} must be in [0, {top}, got {value}")
        choices = (("lr_schedule", LR_SCHEDULES), ("precision", PRECISIONS), ("device", DEVICES))
        choices += (("dist_backend", ("auto", "gloo", "nccl")),)
        for name, allowed in choices:
            value = getattr(self, name)
            if value not in allowed and not (name == "device" and value.startswith("cuda:")):
                raise CharRNNError(f"unknown {setting(name)} {value!r}; choose {', '.join(allowed)}")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["model"] = ModelConfig.from_json(data.get("model", {}))
        values.setdefault("reset_rate", 0.0)  # runs saved before the field trained without resets
        return cls(**values)

    def flat(self) -> dict:
        """The flags as one flat mapping (model flags beside training flags), as `info` shows them."""
        flat = {k: v for k, v in self.to_json().items() if k != "model"}
        flat.update({k: v for k, v in self.model.to_json().items() if k != "vocab_size"})
        flat["texts"] = list(self.texts)
        return flat

    def with_flags(self, flags: dict) -> TrainConfig:
        """This config with `flags` (field names of either dataclass, model flags beside training flags) set."""
        model = replace(self.model, **{k: v for k, v in flags.items() if k in MODEL_FLAGS})
        return replace(self, model=model, **{k: v for k, v in flags.items() if k not in MODEL_FLAGS})

    def with_changes(self, changes: dict) -> TrainConfig:
        """This run's config with `changes` applied for a resume; refuses changes that alter the model."""
        model_changes = {k: v for k, v in changes.items() if k in {f.name for f in fields(ModelConfig)}}
        train_changes = {k: v for k, v in changes.items() if k not in model_changes}
        for name, value in [*model_changes.items(), *train_changes.items()]:
            current = getattr(self.model if name in model_changes else self, name)
            if name in ("texts", "val_texts"):
                value = tuple(str(v) for v in value)
            if name not in RESUMABLE_CHANGES and value != current:
                raise CharRNNError(
                    f"cannot change {setting(name)} when resuming (the run has {current!r}); "
                    "start a new run with another --out instead"
                )
        updates = {k: v for k, v in train_changes.items() if k not in ("texts", "val_texts")}
        if STOP_FLAGS & updates.keys():
            # New stop conditions replace the old ones: a spent time budget must not end the resume.
            updates = {**dict.fromkeys(STOP_FLAGS), **updates}
        return replace(self, **updates)
