"""`TrainConfig`: everything that decides a training run, saved in run.json so it can be reproduced.

The architecture lives in its own `ModelConfig` (nested here), which is all a sampler needs.
Field names are the CLI's flag names with `-` as `_`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from .errors import CharRNNError
from .model import ModelConfig

DEFAULT_TIME_BUDGET_S = 300.0
LR_SCHEDULES = ("cosine", "constant")
PRECISIONS = ("fp32", "bf16", "fp16")
# What a resumed run may change: how long it goes on and how it reports, never what it learns.
STOP_FLAGS = frozenset({"max_steps", "epochs", "time_budget"})
RESUMABLE_CHANGES = frozenset({"max_steps", "epochs", "time_budget", "eval_every", "save_every", "keep", "device"})


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
    warmup_steps: int = 300  # 50 ended 0.03-0.05 nats worse after 5 minutes (README)
    grad_clip: float = 5.0
    adam_beta2: float = 0.999
    shift_epochs: bool = False  # start each epoch's streams at a new point in the text (batches.py)
    ema: float = 0.0  # decay of the weights' moving average that validation and sampling use; 0: off
    precision: str = "fp32"  # the forward pass's arithmetic: bf16/fp16 autocast keep fp32 weights and Adam
    epochs: int | None = None
    max_steps: int | None = None
    time_budget: float | None = None  # seconds of training (evaluation and saving included)
    val_fraction: float = 0.1
    eval_every: int = 1000
    save_every: int = 1000
    keep: int = 5
    seed: int = 1234
    device: str = "auto"
    encoding: str = "utf-8"
    errors: str = "strict"

    def __post_init__(self):
        object.__setattr__(self, "texts", tuple(str(t) for t in self.texts))
        if self.epochs is None and self.max_steps is None and self.time_budget is None:
            object.__setattr__(self, "time_budget", DEFAULT_TIME_BUDGET_S)
        self._validate()

    def _validate(self) -> None:
        positive = ["batch_size", "seq_len", "lr", "eval_every", "save_every", "keep"]
        positive += [name for name in ("epochs", "max_steps", "time_budget") if getattr(self, name) is not None]
        for name in positive:
            if getattr(self, name) <= 0:
                raise CharRNNError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.grad_clip < 0 or self.warmup_steps < 0:
            raise CharRNNError("--grad-clip and --warmup-steps must not be negative")
        if not 0.0 <= self.val_fraction < 1.0:
            raise CharRNNError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if not 0.0 <= self.ema < 1.0:
            raise CharRNNError(f"--ema must be in [0, 1), got {self.ema}")
        if not 0.0 <= self.adam_beta2 < 1.0:
            raise CharRNNError(f"--adam-beta2 must be in [0, 1), got {self.adam_beta2}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise CharRNNError(f"--min-lr-ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise CharRNNError(f"unknown --lr-schedule {self.lr_schedule!r}; choose {' or '.join(LR_SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise CharRNNError(f"unknown --precision {self.precision!r}; choose {', '.join(PRECISIONS)}")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith("cuda:"):
            raise CharRNNError(f"unknown --device {self.device!r}; choose auto, cpu, cuda or mps")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["model"] = ModelConfig.from_json(data.get("model", {}))
        return cls(**values)

    def flat(self) -> dict:
        """The flags as one flat mapping (model flags beside training flags), as `info` shows them."""
        flat = {k: v for k, v in self.to_json().items() if k != "model"}
        flat.update({k: v for k, v in self.model.to_json().items() if k != "vocab_size"})
        flat["texts"] = list(self.texts)
        return flat

    def with_changes(self, changes: dict) -> TrainConfig:
        """This run's config with `changes` applied for a resume; refuses changes that alter the model."""
        model_changes = {k: v for k, v in changes.items() if k in {f.name for f in fields(ModelConfig)}}
        train_changes = {k: v for k, v in changes.items() if k not in model_changes}
        for name, value in [*model_changes.items(), *train_changes.items()]:
            current = getattr(self.model if name in model_changes else self, name)
            if name == "texts":
                value = tuple(str(v) for v in value)
            if name not in RESUMABLE_CHANGES and value != current:
                raise CharRNNError(
                    f"cannot change --{name.replace('_', '-')} when resuming (the run has {current!r}); "
                    "start a new run with another --out instead"
                )
        updates = {k: v for k, v in train_changes.items() if k != "texts"}
        if STOP_FLAGS & updates.keys():
            # New stop conditions replace the old ones: a spent time budget must not end the resume.
            updates = {**dict.fromkeys(STOP_FLAGS), **updates}
        return replace(self, **updates)
