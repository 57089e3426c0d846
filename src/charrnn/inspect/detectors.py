"""Detectors: what a text is doing at each character, as a number per character, for cells to be
compared with (Karpathy, Johnson and Fei-Fei 2015 found cells for quotes, line length, brackets and
indentation). Each is a function of the text alone, plus any regular expression a user names."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from ..errors import CharRNNError

_SENTENCE_END = re.compile(r"[.!?]['\")\]]*\s+")


def _inside(text: str, opening: str, closing: str) -> np.ndarray:
    """The nesting depth of `opening`/`closing` pairs at each character (the brackets themselves inside)."""
    depth, out = 0, np.zeros(len(text))
    for t, ch in enumerate(text):
        if ch in opening:
            depth += 1
        out[t] = depth
        if ch in closing:
            depth = max(0, depth - 1)
    return out


def in_quotes(text: str) -> np.ndarray:
    """1 from an opening double quote to its closing one, both included: straight quotes take turns,
    curly ones open and close."""
    inside, out = False, np.zeros(len(text))
    for t, ch in enumerate(text):
        if ch == "“" or (ch == '"' and not inside):
            inside, out[t] = True, 1
            continue
        out[t] = inside
        if ch == "”" or (ch == '"' and inside):
            inside = False
    return out


def line_position(text: str) -> np.ndarray:
    out, column = np.zeros(len(text)), 0
    for t, ch in enumerate(text):
        out[t] = column
        column = 0 if ch == "\n" else column + 1
    return out


def to_line_end(text: str) -> np.ndarray:
    """Characters left to the line's end, this one included (0 on the line break itself)."""
    out, left = np.zeros(len(text)), 0
    for t in range(len(text) - 1, -1, -1):
        left = 0 if text[t] == "\n" else left + 1
        out[t] = left
    return out


def word_position(text: str) -> np.ndarray:
    out, position = np.zeros(len(text)), 0
    for t, ch in enumerate(text):
        position = position + 1 if ch.isalnum() else 0
        out[t] = position
    return out


def indentation(text: str) -> np.ndarray:
    """The current line's leading spaces (a tab counts 4), at every character of the line."""
    out = np.zeros(len(text))
    start = 0
    for line in text.split("\n"):
        stripped = line.lstrip(" \t")
        width = sum(4 if ch == "\t" else 1 for ch in line[: len(line) - len(stripped)])
        out[start : start + len(line) + 1] = width
        start += len(line) + 1
    return out


def matches(pattern: str) -> Callable[[str], np.ndarray]:
    """1 on every character inside a match of `pattern`."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise CharRNNError(f"--detect: {pattern!r} is not a regular expression ({exc})") from None

    def detect(text: str) -> np.ndarray:
        out = np.zeros(len(text))
        for match in compiled.finditer(text):
            out[match.start() : match.end()] = 1
        return out

    return detect


def _at(condition: Callable[[str], bool]) -> Callable[[str], np.ndarray]:
    return lambda text: np.fromiter((condition(ch) for ch in text), dtype=float, count=len(text))


def _after_newline(text: str) -> np.ndarray:
    return np.array([0.0] + [float(ch == "\n") for ch in text[:-1]])[: len(text)]


def _sentence_start(text: str) -> np.ndarray:
    out = np.zeros(len(text))
    for match in _SENTENCE_END.finditer(text):
        if match.end() < len(text):
            out[match.end()] = 1
    return out


BUILT_IN: dict[str, Callable[[str], np.ndarray]] = {
    "in quotes": in_quotes,
    "in parentheses": lambda text: np.minimum(_inside(text, "(", ")"), 1),
    "bracket depth": lambda text: _inside(text, "([{", ")]}"),
    "line position": line_position,
    "to line end": to_line_end,
    "word position": word_position,
    "sentence start": _sentence_start,
    "after newline": _after_newline,
    "digit": _at(str.isdigit),
    "capital": _at(str.isupper),
    "indentation": indentation,
}


def parse_detector(spec: str) -> tuple[str, Callable[[str], np.ndarray]]:
    """`NAME=REGEX` as given to --detect."""
    name, sep, pattern = spec.partition("=")
    if not sep or not name.strip() or not pattern:
        raise CharRNNError(f"--detect takes NAME=REGEX, got {spec!r}")
    return name.strip(), matches(pattern)
