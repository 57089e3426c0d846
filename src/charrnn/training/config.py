"""`TrainConfig`: everything that decides a training run, saved in run.json so it can be reproduced.

The architecture lives in its own `ModelConfig` (nested here), which is all a sampler needs.
Field names are the CLI's flag names with `-` as `_`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from ..data.splits import Split, split_flag
from ..errors import CharRNNError, setting
from ..model.network import MODEL_FLAGS, ModelConfig
from ..settings import check, checkpoint_count, duration, fraction, non_negative, option, positive

DEFAULT_TIME_BUDGET_S = 300.0
LR_SCHEDULES = ("cosine", "constant")
PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")
BACKENDS = ("auto", "gloo", "nccl")
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
    out: str = option("runs/run", "run directory to create", shown="runs/<first text's name>")
    model: ModelConfig = field(default_factory=ModelConfig)
    batch_size: int = positive(32, "sequences per batch")
    seq_len: int = positive(50, "steps per sequence")
    lr: float = positive(4e-3, "Adam learning rate")
    lr_schedule: str = option("cosine", "cosine decay to --min-lr-ratio, or constant", choices=LR_SCHEDULES)
    min_lr_ratio: float = fraction(0.1, "final lr as a fraction of --lr", closed=True)
    # a shorter warm-up cost more than the run won back (docs/experiments.md)
    warmup_steps: int = non_negative(300, "linear lr warm-up steps")
    grad_clip: float = non_negative(5.0, "global gradient-norm clip, 0 for none")
    adam_beta2: float = fraction(0.999, "Adam's second-moment decay")
    shift_epochs: bool = option(
        False, "start each epoch's streams at a new random point in the text instead of repeating them"
    )
    reset_rate: float = fraction(
        0.01,
        "each stream's chance of starting a batch from the zero state, so that a prime read from it may "
        "start anywhere in a text; 0: only at each epoch's start",
    )
    ema: float = fraction(0.0, "validate and sample with a moving average of the weights of this decay, 0 for none")
    teachers: tuple[str, ...] = ()  # runs to distil from (the mean of their distributions); cli's --teacher
    distill_mix: float = fraction(
        0.5,
        "--teacher: the share of the loss that is the teachers' distribution, the rest the text's characters",
        closed=True,
    )
    distill_temperature: float = positive(
        1.0, "--teacher: the temperature softening the teachers' and the model's distributions"
    )
    ar: float = non_negative(
        0.0,
        "activation regularisation: add this times the mean square of the last layer's dropped outputs to the training loss",
    )
    tar: float = non_negative(
        0.0,
        "temporal activation regularisation: add this times the mean square of the last layer's step-to-step change",
    )
    precision: str = option(
        "fp32",
        "the forward pass in fp32, or in bf16/fp16 autocast (bf16 steps ~1.5x faster on CPUs with AVX512-BF16 "
        "but learn less each; fp16 needs CUDA); weights and Adam stay fp32",
        choices=PRECISIONS,
    )
    epochs: int | None = positive(None, "stop after this many passes over the text")
    max_steps: int | None = positive(None, "stop after this many batches")
    time_budget: float | None = positive(
        None,
        "stop after this long, e.g. 600, 10m: from the first step to the final checkpoint, the probe's included",
        parse=duration,
        shown="5m if no other stop",
    )
    patience: int | None = positive(None, "stop after this many validations in a row without a new best")
    init_from: str | None = option(
        None,
        "start from RUN's best weights and architecture (fine-tuning): new text, optimizer and schedule",
        metavar="RUN",
    )
    tensorboard: str | None = option(None, "also log to TensorBoard, in DIR/<run name>", metavar="DIR")
    val_fraction: float = fraction(0.1, "share of the text, from its end, for validation")
    split: str | None = option(
        None,
        "training, validation and test parts in file order, as fractions (0.9,0.05,0.05) or symbol counts "
        "(90M,5M,5M); replaces --val-fraction; the test part is read only by charrnn eval --split test",
        parse=split_flag,
        metavar="TRAIN,VAL,TEST",
    )
    val_texts: tuple[str, ...] = ()  # a separate validation text (then all of `texts` trains); cli.py's --val-text
    # the validation tail's cap: a 1 GB corpus validates on 5 MB, not 100
    val_max_chars: int = positive(5_000_000, "at most this many characters of validation text, from the end")
    eval_every: int = positive(1000, "validate every N steps")
    save_every: int = positive(1000, "checkpoint every N steps")
    save_interval: float = non_negative(
        300.0,
        "checkpoint (and validate) at least this often in training time, e.g. 5m, the first after 30 s at most; "
        "0: by steps only",
        parse=duration,
        shown="5m",
    )
    keep: int = non_negative(5, "periodic checkpoints to keep, besides the best, or all", parse=checkpoint_count)
    seed: int = option(1234, "random seed")
    device: str = option(
        "auto",
        "auto, cpu, cuda, cuda:N or mps (under torchrun auto is cuda:LOCAL_RANK where GPUs are)",
        choices=DEVICES,
        also_allowed=lambda value: str(value).startswith("cuda:"),
    )
    dist_backend: str = option(
        "auto", "under torchrun: the collectives' backend (auto: gloo on the CPU, NCCL on CUDA)", choices=BACKENDS
    )
    encoding: str = option("utf-8", "text encoding of the files")
    errors: str = option("strict", "what to do with undecodable bytes: strict, replace, ignore")
    bytes: bool = option(
        False, "read the files as raw bytes: one symbol per byte, nothing decoded or translated (as enwik8 counts)"
    )

    def __post_init__(self):
        object.__setattr__(self, "texts", tuple(str(t) for t in self.texts))
        object.__setattr__(self, "val_texts", tuple(str(t) for t in self.val_texts))
        object.__setattr__(self, "teachers", tuple(str(t) for t in self.teachers))
        if self.epochs is None and self.max_steps is None and self.time_budget is None:
            object.__setattr__(self, "time_budget", DEFAULT_TIME_BUDGET_S)
        check(self)
        if self.split is not None:
            Split.parse(self.split)
            if self.val_texts:
                raise CharRNNError("--split and --val-text both choose the validation text; give one")
        if self.bytes and (self.encoding, self.errors) != ("utf-8", "strict"):
            raise CharRNNError("--bytes reads the files' bytes as they are: drop --encoding and --errors")

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
