"""docs/flags.md, generated: every command's flags with their defaults and meanings.

`python -m charrnn.cli.flagdoc > docs/flags.md` (or `make docs`) writes it; a test regenerates it and fails
on any difference, so the page cannot drift from the parser. The train parser suppresses its defaults
(a resume must tell which flags were given), so its defaults come from the config dataclasses.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import MISSING, fields

from ..model.network import ModelConfig
from ..training.config import TrainConfig
from .main import build_parser

HEADER = """# Flags

Every flag of every `charrnn` command, with its default. Generated from the parser and the config
dataclasses by `python -m charrnn.cli.flagdoc > docs/flags.md` (`make docs`); `tests/test_flagdoc.py` fails
when this page and the code disagree.
"""


def _config_defaults() -> dict:
    defaults = {}
    for cls in (ModelConfig, TrainConfig):
        for f in fields(cls):
            if f.default is not MISSING:
                defaults[f.name] = f.default
    return defaults


def _default(action: argparse.Action, config_defaults: dict) -> str:
    if action.default is argparse.SUPPRESS:
        value = config_defaults.get(action.dest)
        if action.dest == "time_budget":
            return "300 s when no other stop is given"
        if action.dest == "embed_dim":
            return "the vocabulary's size, at most 128"
        if action.dest == "out":
            return "runs/<first text's name>"
    else:
        value = action.default
    if value is None or value is False or value == []:
        return "—"
    if value == "":
        return "empty"
    return f"`{value}`"


def _name(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`" + (" …" if action.nargs in ("*", "+") else "")
    name = ", ".join(f"`{option}`" for option in action.option_strings)
    if action.choices:
        name += " " + "\\|".join(str(choice) for choice in action.choices)
    elif action.nargs != 0:
        name += f" {action.metavar or action.dest.upper()}"
    return name


def _help(action: argparse.Action, default: str) -> str:
    text = action.help or ""
    if default != "—":  # the default has its own column; the parser's help repeats it for `--help` readers
        text = re.sub(r"\s*\(default[^()]*(\([^()]*\)[^()]*)*\)$", "", text)
    return text.replace("|", "\\|")


def flags_markdown() -> str:
    parser = build_parser()
    config_defaults = _config_defaults()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sections = [HEADER]
    for name, command in commands.choices.items():
        rows = ["| flag | default | meaning |", "| --- | --- | --- |"]
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            default = _default(action, config_defaults)
            rows.append(f"| {_name(action)} | {default} | {_help(action, default)} |")
        about = command.description or commands_help(commands, name)
        sections.append(f"## charrnn {name}\n\n{about}\n\n" + "\n".join(rows) + "\n")
    top = [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
    sections.append("## Every command\n\n" + "\n".join(f"- {_name(a)}: {_help(a, '—')}" for a in top) + "\n")
    return "\n".join(sections)


def commands_help(commands: argparse._SubParsersAction, name: str) -> str:
    for choice in commands._choices_actions:
        if choice.dest == name:
            return choice.help[0].upper() + choice.help[1:] + "."
    return ""


if __name__ == "__main__":
    print(flags_markdown(), end="")
