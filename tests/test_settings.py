"""Each setting is declared once (settings.py): its flag, its check and the request schemas' bounds are
derived from that declaration, and these tests fail when any of them says something else."""

import argparse
import math
from dataclasses import MISSING

import pytest

from charrnn.cli.main import build_parser
from charrnn.errors import CharRNNError, flag_name
from charrnn.generate.picking import SamplingOptions
from charrnn.model.network import ModelConfig
from charrnn.serve.limits import ServeLimits
from charrnn.settings import bounds, help_text, specs
from charrnn.training.config import TrainConfig

DECLARED = [("train", ModelConfig), ("train", TrainConfig), ("sample", SamplingOptions), ("serve", ServeLimits)]


def command_actions(command: str) -> dict[str, argparse.Action]:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {option: action for action in commands.choices[command]._actions for option in action.option_strings}


@pytest.mark.parametrize("command, cls", DECLARED, ids=[f"{c}-{cls.__name__}" for c, cls in DECLARED])
def test_every_flag_says_what_its_declaration_says(command, cls):
    actions = command_actions(command)
    for name, (declared, spec) in specs(cls).items():
        if not spec.flag:
            assert flag_name(name) not in actions, name
            continue
        action = actions[flag_name(name)]
        assert action.dest == name and action.help == help_text(declared, spec), name
        assert tuple(action.choices or ()) == (() if spec.also_allowed else spec.choices), name
        if action.default is not argparse.SUPPRESS:  # train suppresses its defaults (resume tells given flags)
            assert action.default == (None if declared.default is MISSING else declared.default), name
        if declared.default not in (None, False, MISSING):
            assert "(default " in action.help, name  # --help states every default


def test_a_value_outside_its_declaration_is_one_line_naming_it_both_ways():
    cases = [
        (lambda: ModelConfig(hidden=0), "hidden (--hidden) must be positive, got 0"),
        (lambda: ModelConfig(cell="lstn"), "unknown cell (--cell) 'lstn'; choose one of lstm, gru, rnn"),
        (lambda: TrainConfig(warmup_steps=-1), "warmup_steps (--warmup-steps) must not be negative, got -1"),
        (lambda: TrainConfig(val_fraction=1.0), "val_fraction (--val-fraction) must be in [0, 1), got 1.0"),
        (lambda: TrainConfig(min_lr_ratio=1.5), "min_lr_ratio (--min-lr-ratio) must be in [0, 1], got 1.5"),
        (lambda: TrainConfig(lr=math.nan), "lr (--lr) must be positive, got nan"),
        (lambda: TrainConfig(device="tpu"), "unknown device (--device) 'tpu'"),
        (lambda: SamplingOptions(top_p=0.0), "top_p (--top-p) must be in (0, 1], got 0.0"),
        (lambda: ServeLimits(prime_cache=-1), "prime_cache (--prime-cache) must not be negative, got -1"),
        (lambda: ServeLimits(max_batch=0), "max_batch (--max-batch) must be positive, got 0"),
    ]
    for make, message in cases:
        with pytest.raises(CharRNNError) as caught:
            make()
        assert str(caught.value).startswith(message), str(caught.value)
    assert TrainConfig(device="cuda:1").device == "cuda:1"  # allowed past the choices
    assert TrainConfig(max_steps=None, epochs=2).max_steps is None  # an optional setting left unset


def test_the_request_schemas_take_their_bounds_and_defaults_from_the_sampling_options():
    from charrnn.serve.schemas import CompletionRequest, GenerateRequest

    assert bounds(SamplingOptions, "top_p") == {"gt": 0, "le": 1}
    for schema in (GenerateRequest, CompletionRequest):
        for name in ("temperature", "top_k", "top_p"):
            field = schema.model_fields[name]
            declared = specs(SamplingOptions)[name][0]
            limits = {
                kind: getattr(m, kind) for m in field.metadata for kind in ("gt", "ge", "lt", "le") if hasattr(m, kind)
            }
            assert field.default == declared.default and limits == bounds(SamplingOptions, name), (schema, name)
