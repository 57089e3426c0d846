"""The package's folders: each is a regular package, and none of its files is ignored by git (a
`runs/` pattern meant for run directories once hid src/charrnn/runs/__init__.py from commits)."""

import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "charrnn"


def test_every_folder_of_the_package_is_a_regular_package():
    folders = {path.parent for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts}
    assert sorted(str(f) for f in folders if not (f / "__init__.py").is_file()) == []


def test_no_file_of_the_package_is_ignored_by_git():
    if shutil.which("git") is None or not (PACKAGE.parents[1] / ".git").exists():
        pytest.skip("not a git checkout")
    files = [str(p) for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *files], capture_output=True, text=True, cwd=PACKAGE)
    assert ignored.stdout.split() == []
