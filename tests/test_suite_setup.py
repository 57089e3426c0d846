"""The suite itself: without the corpora a run outside CI says so in one line; under CI it fails."""

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def pytest_without_corpora(ci: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["CHARRNN_DATA_DIR"] = str(TESTS / "no-such-data")
    if ci:
        env["CI"] = "true"
    test = f"{TESTS / 'test_train.py'}::test_training_lowers_the_loss_and_writes_a_row_per_step"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, cwd=TESTS.parent)


def test_a_missing_corpus_is_one_visible_line_outside_ci():
    result = pytest_without_corpora(ci=False)
    assert result.returncode == 0, result.stdout
    assert "1 tests skipped: " in result.stdout and "no-such-data/anna.txt not found" in result.stdout


def test_a_missing_corpus_fails_under_ci():
    result = pytest_without_corpora(ci=True)
    assert result.returncode == 1 and "no-such-data/anna.txt not found" in result.stdout


def test_the_package_declares_its_licence_as_setuptools_asks():
    """A licence table made setuptools print a deprecation warning three times during every install."""
    import tomllib

    project = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())
    assert isinstance(project["project"]["license"], str)
    assert any(r.startswith("setuptools>=77") for r in project["build-system"]["requires"])


def test_what_the_commands_write_by_default_is_ignored_by_git():
    paths = ["runs/anna/run.json", "sweeps/anna/x", "corpus/books/ids.bin", "curves.png"]
    done = subprocess.run(["git", "check-ignore", *paths], capture_output=True, text=True, cwd=TESTS.parent)
    assert done.stdout.split() == paths, done.stdout
