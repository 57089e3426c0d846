"""`--init-from RUN`: a new run that starts from another run's weights (as char-rnn-tensorflow's
`init_from`). The architecture is RUN's; the text, optimizer and schedule are the new run's, and the
new text may only hold characters RUN's vocabulary has (the output layer is RUN's).
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import torch

from ..data.vocab import Vocab
from ..errors import CharRNNError, setting
from ..model.network import REGULARISERS, ModelConfig
from ..runs.rundir import load_model
from .config import TrainConfig

ARCHITECTURE = ("cell", "hidden", "layers", "embed_dim")  # what the weights' shapes depend on
REGULARISATION = REGULARISERS  # the new run's own when set away from the default


def starting_point(config: TrainConfig) -> tuple[TrainConfig, Vocab, dict[str, torch.Tensor]]:
    """`config` with the architecture of its `init_from` run, that run's vocabulary and its best weights."""
    model, vocab, info = load_model(config.init_from, "best", "cpu")
    saved, asked, default = model.config, config.model, ModelConfig()
    for name in ARCHITECTURE:
        if getattr(asked, name) not in (getattr(default, name), getattr(saved, name)):
            raise CharRNNError(
                f"{setting(name)} {getattr(asked, name)} conflicts with --init-from {config.init_from}, which has "
                f"{getattr(saved, name)}; a fine-tuned run keeps its architecture (drop the flag)"
            )
    kept = {f.name: getattr(saved, f.name) for f in fields(ModelConfig)}
    kept.update({n: getattr(asked, n) for n in REGULARISATION if getattr(asked, n) != getattr(default, n)})
    source = str(Path(info.tensors_path).resolve())
    return replace(config, model=ModelConfig(**kept), init_from=source), vocab, model.state_dict()
