"""Shared fixtures: small texts, and tiny trained runs made once per test session."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import charrnn
from charrnn.cli import main as cli
from charrnn.training import allocator

# The corpora sit beside the checkout; CHARRNN_DATA_DIR points elsewhere (a machine the checkout was copied to).
DATA_DIR = Path(os.environ.get("CHARRNN_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
ANNA = DATA_DIR / "anna.txt"

# Small enough to train in seconds, big enough that every stage is exercised.
TINY_FLAGS = dict(hidden=32, layers=2, embed_dim=16, dropout=0.1)
TINY_TRAIN = dict(batch_size=8, seq_len=32, lr=1e-2, warmup_steps=5, eval_every=10, save_every=10, seed=7)


MISSING_CORPUS = f"{ANNA} not found"


def anna_slice(chars: int) -> str:
    if not ANNA.exists():
        if os.environ.get("CI"):  # CI has the corpora beside the checkout: missing means broken set-up
            pytest.fail(MISSING_CORPUS)
        pytest.skip(MISSING_CORPUS)
    with open(ANNA, encoding="utf-8") as f:
        return f.read(chars)


@pytest.fixture(scope="session")
def anna_50k(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "anna50k.txt"
    path.write_text(anna_slice(50_000), encoding="utf-8")
    return path


def tiny_config(text: Path, out: Path, **overrides) -> charrnn.TrainConfig:
    model = charrnn.ModelConfig(**{**TINY_FLAGS, **overrides.pop("model", {})})
    return charrnn.TrainConfig(texts=(str(text),), out=str(out), model=model, **{**TINY_TRAIN, **overrides})


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, anna_50k) -> Path:
    """A tiny LSTM trained for 30 steps with checkpoints at 10, 20, 30 (do not modify it in tests)."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    charrnn.train(tiny_config(anna_50k, out, max_steps=30), stream=open(os.devnull, "w"))
    return out


def run_cli(*args, env_extra: dict | None = None, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """The real command line, in a new process."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "charrnn", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        **kwargs,
    )


def run_main(*args, cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """The command line in this process: `cli.main`, what the console script calls, with its output and
    exit code; for the many checks that need no process of their own. The allocator setting, which would
    last for the whole test session, is left off."""
    out, err = io.StringIO(), io.StringIO()
    saved_allocator, saved_cwd = allocator.keep_freed_memory, os.getcwd()
    allocator.keep_freed_memory = lambda: False
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(map(str, args)))
            except SystemExit as exc:  # argparse's own exits (bad flags, --help)
                code = exc.code
    finally:
        allocator.keep_freed_memory = saved_allocator
        os.chdir(saved_cwd)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def pytest_terminal_summary(terminalreporter) -> None:
    """One visible line when tests were skipped for want of the corpora, so a green run says what it left out."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if MISSING_CORPUS in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} tests skipped: {MISSING_CORPUS}; put anna.txt in ../shared/data/ or set CHARRNN_DATA_DIR",
            yellow=True,
            bold=True,
        )


# Debian's Chromium, driven by Playwright, for the pages.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(
    os.environ.get("CHARRNN_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts")
)  # screenshots
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("no chromium on PATH: .ci/run installs Debian's chromium package")
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()
