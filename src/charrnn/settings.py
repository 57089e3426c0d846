"""One declaration per setting (litgpt's way): a dataclass field's default, help, allowed values and
bounds, declared once with `option(...)`. Everything else is derived from it: the check that refuses a
bad value in a message naming the setting both ways (`check`), the command line's flags (`add_flags`),
the HTTP request schemas' bounds (`bounds`) and, through the parser, docs/flags.md.
"""

from __future__ import annotations

import argparse
import re
import types
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, get_args, get_type_hints

from .errors import CharRNNError, flag_name, setting

SPEC = "charrnn.setting"


@dataclass(frozen=True)
class Spec:
    help: str
    choices: tuple = ()
    low: float | None = None  # the smallest value allowed (with low_open: values above it)
    low_open: bool = False
    high: float | None = None  # the largest value allowed (with high_open: values below it)
    high_open: bool = False
    parse: Callable[[str], Any] | None = None  # the flag's argparse type, when not the field's own
    shown: str | None = None  # how `--help` states the default, when not as the value itself
    metavar: str | None = None
    flag: bool = True  # whether the command line has it
    also_allowed: Callable[[Any], bool] | None = None  # values past the choices that are allowed too

    def bounds_text(self) -> str:
        if self.low == 0 and self.high is None:
            return "must be positive" if self.low_open else "must not be negative"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"must be in {left}{self.low:g}, {self.high:g}{right}"


def option(default: Any = MISSING, help: str = "", *, factory: Callable | None = None, **spec) -> Any:
    """A dataclass field declaring a setting: `option(512, "units per layer", low=0, low_open=True)`."""
    metadata = {SPEC: Spec(help=help, **spec)}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def positive(default: Any, help: str, **spec) -> Any:
    return option(default, help, low=0, low_open=True, **spec)


def non_negative(default: Any, help: str, **spec) -> Any:
    return option(default, help, low=0, **spec)


def fraction(default: Any, help: str, *, closed: bool = False, **spec) -> Any:
    """A value in [0, 1) (or [0, 1] when `closed`)."""
    return option(default, help, low=0, high=1, high_open=not closed, **spec)


def specs(cls) -> dict[str, tuple[Field, Spec]]:
    """The declared settings of a dataclass, in field order."""
    return {f.name: (f, f.metadata[SPEC]) for f in fields(cls) if SPEC in f.metadata}


def check(instance) -> None:
    """Refuses the first setting of `instance` outside its declaration, in one line naming it both ways."""
    for name, (_, spec) in specs(type(instance)).items():
        value = getattr(instance, name)
        if value is None:  # an optional setting left unset
            continue
        if spec.choices and value not in spec.choices and not (spec.also_allowed and spec.also_allowed(value)):
            raise CharRNNError(f"unknown {setting(name)} {value!r}; choose one of {', '.join(map(str, spec.choices))}")
        if not _within(spec, value):
            raise CharRNNError(f"{setting(name)} {spec.bounds_text()}, got {value}")


def _within(spec: Spec, value) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or (spec.low is None and spec.high is None):
        return True
    if spec.low is not None and not (value > spec.low if spec.low_open else value >= spec.low):
        return False
    if spec.high is not None and not (value < spec.high if spec.high_open else value <= spec.high):
        return False
    return value == value  # NaN is in no range


def bounds(cls, name: str) -> dict[str, float]:
    """A setting's bounds as pydantic's Field takes them (gt/ge, lt/le)."""
    spec = specs(cls)[name][1]
    found = {}
    if spec.low is not None:
        found["gt" if spec.low_open else "ge"] = spec.low
    if spec.high is not None:
        found["lt" if spec.high_open else "le"] = spec.high
    return found


def flagged(cls) -> set[str]:
    """The settings of `cls` the command line has a flag for."""
    return {name for name, (_, spec) in specs(cls).items() if spec.flag}


def add_flags(parser: argparse.ArgumentParser, cls, suppress: bool = False, skip: tuple[str, ...] = ()) -> None:
    """A flag for each declared setting of `cls` with `flag` set; `suppress` leaves the defaults out of the
    parsed arguments, so that a caller can tell which flags were given."""
    for name, (f, spec) in specs(cls).items():
        if not spec.flag or name in skip:
            continue
        default = f.default if f.default is not MISSING else None
        kwargs: dict[str, Any] = {"help": help_text(f, spec)}
        kwargs["default"] = argparse.SUPPRESS if suppress else default
        if _value_type(cls, name) is bool:
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = spec.parse or _value_type(cls, name)
            if spec.choices and not spec.also_allowed:  # otherwise `check` alone judges the value
                kwargs["choices"] = spec.choices
            if spec.metavar:
                kwargs["metavar"] = spec.metavar
        parser.add_argument(flag_name(name), **kwargs)


def help_text(f: Field, spec: Spec) -> str:
    """The flag's help: the declared text, then the default as `--help` readers want it."""
    if spec.shown is not None:
        return f"{spec.help} (default {spec.shown})" if spec.shown else spec.help
    default = f.default if f.default is not MISSING else None
    if default is None or default is False:
        return spec.help
    large = isinstance(default, int) and not isinstance(default, bool) and default >= 10_000
    return f"{spec.help} (default {default:,})" if large else f"{spec.help} (default {default})"


def _value_type(cls, name: str) -> type:
    """The type a flag parses to: the field's annotation, without its `| None`."""
    kind = get_type_hints(cls)[name]
    if type(kind) is types.UnionType:
        kind = next(a for a in get_args(kind) if a is not type(None))
    return kind


def duration(text: str) -> float:
    """Seconds from '300', '90s', '10m' or '1.5h'."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}; use seconds or e.g. 90s, 10m, 1h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def checkpoint_count(text: str) -> int:
    """A number of checkpoints, or 'all' (0)."""
    if text == "all":
        return 0
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}; give a number or all") from None
