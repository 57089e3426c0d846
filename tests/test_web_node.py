"""The browser module's pieces that need no browser, under node's test runner (tests/web/*.test.mjs),
held to Python's own: numpy's generator, `pick_next_row`, `StopMatcher` and the sampling options'
checks, whose results this test writes to a fixture file for them."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from charrnn.errors import CharRNNError
from charrnn.generate.picking import SamplingOptions, pick_next_row
from charrnn.generate.stops import StopMatcher
from charrnn.web.export import declared_options

WEB_TESTS = Path(__file__).resolve().parent / "web"
SEEDS = [0, 1, 42, 2**32 - 1, 2**32, 2**40 + 7, 2**63 - 1, 123456789012345678901]
REQUESTS = [
    {},
    {"temperature": 0.7},
    {"temperature": 1.6},
    {"topK": 1},
    {"topK": 3},
    {"topK": 50},
    {"topP": 0.3},
    {"topP": 0.95, "temperature": 0.8},
    {"topK": 7, "topP": 0.6, "temperature": 1.2},
    {"topP": 1e-9},
]


def python_options(request: dict) -> SamplingOptions:
    names = {"topK": "top_k", "topP": "top_p"}
    return SamplingOptions(**{names.get(k, k): v for k, v in request.items()})


def picking_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    for index, request in enumerate(REQUESTS * 4):
        vocab = int(rng.integers(2, 120))
        logits = (rng.standard_normal(vocab) * rng.uniform(0.5, 6)).astype(np.float32)
        if index % 5 == 0:
            logits[rng.integers(vocab)] = logits.max()  # a tie for the likeliest
        draws = np.random.default_rng(index)
        picks = [pick_next_row(logits, python_options(request), draws) for _ in range(30)]
        cases.append({"logits": logits.tolist(), "request": request, "seed": str(index), "picks": picks})
    return cases


def option_cases() -> list[dict]:
    cases = []
    for request in [{"temperature": 0}, {"temperature": 100}, {"temperature": 100.5}, {"temperature": -0.1},
                    {"topK": 0}, {"topK": 3}, {"topK": -1}, {"topK": 2.5}, {"topP": 1}, {"topP": 0},
                    {"topP": 1e-6}, {"topP": 1.01}, {"greedy": True}, {"greedy": 1}, {"temperature": "1"}]:  # fmt: skip
        try:
            value = next(iter(request.values()))
            if type(value) not in (bool, int, float) or ("greedy" in request and type(value) is not bool):
                raise CharRNNError("wrong type")  # JSON's types: the module takes no string for a number
            if "topK" in request and not float(value).is_integer():
                raise CharRNNError("not whole")
            python_options(request)
            cases.append({"request": request, "valid": True})
        except CharRNNError:
            cases.append({"request": request, "valid": False})
    return cases


def stop_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    for _ in range(300):
        stops = ["".join(rng.choice(list("ab\n"), int(rng.integers(1, 4)))) for _ in range(int(rng.integers(1, 3)))]
        pieces = ["".join(rng.choice(list("abc\n"), int(rng.integers(1, 4)))) for _ in range(12)]
        matcher, outputs = StopMatcher(tuple(stops)), []
        for piece in pieces:
            text, stopped = matcher.push(piece)
            outputs.append([text, stopped])
            if stopped:
                break
        if not outputs[-1][1]:
            outputs.append([matcher.flush(), False])
        cases.append({"stops": stops, "pieces": pieces, "outputs": outputs})
    return cases


def test_the_modules_pass_nodes_tests_against_pythons_results(tmp_path):
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("no node on PATH: .ci/run installs Debian's nodejs package")
        pytest.skip("no node on PATH (apt-get install nodejs)")
    rng = np.random.default_rng(2026)
    draws = [{"seed": str(s), "draws": np.random.default_rng(s).random(8).tolist()} for s in SEEDS]
    fixture = {"random": draws, "picking": picking_cases(rng), "options": declared_options(),
               "option_cases": option_cases(), "stops": stop_cases(rng)}  # fmt: skip
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(fixture))
    files = sorted(str(p) for p in WEB_TESTS.glob("*.test.mjs"))
    done = subprocess.run([node, "--test", *files], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CHARRNN_WEB_FIXTURE": str(path)})  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout and len(files) >= 5
