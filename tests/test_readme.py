"""README's Quick start runs in the order written, after `make demo`, from a fresh directory: each
command as printed, with only the training times cut short (a run of minutes becomes seconds)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA_DIR

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_start() -> list[str]:
    """The commands of README's Quick start block, without their comments."""
    section = README.read_text(encoding="utf-8").split("## Quick start", 1)[1]
    block = section.split("```", 2)[1]
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines()]
    return [line for line in lines if line]


def shortened(command: str) -> str:
    """`command` with its training time cut to seconds; everything else as the README prints it."""
    if " train " not in f" {command} ":
        return command
    if "--time-budget" in command:
        return re.sub(r"--time-budget \S+", "--time-budget 12", command)
    return command + " --time-budget 4"


def test_the_quick_start_runs_in_order_after_make_demo(tmp_path):
    if not DATA_DIR.is_dir():
        pytest.skip(f"no corpora at {DATA_DIR}")
    commands = quick_start()
    assert commands[0] == "source .venv/bin/activate"  # what make demo made; here the test's own environment
    root = tmp_path / "checkout"
    root.mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(DATA_DIR)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CHARRNN_ANNA": ""}
    demo = subprocess.run([sys.executable, "-m", "charrnn", "demo", "--time-budget", "4"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    for command in map(shortened, commands[1:]):
        done = subprocess.run(["bash", "-c", command], cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr, done.stderr
